"""gateway/wire/body.py: the body as orjson parses it, with the tools parsed once per scope and distinct bytes."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.wire import body as body_module
from gateway.wire.body import BodyError, SharedTools, body_parse, tools_cache

CLAUDE_CODE = Path(__file__).resolve().parents[2] / "fixtures" / "claude_code"
FIXTURES = sorted(CLAUDE_CODE.glob("*.json"))


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    tools_cache.clear()
    yield
    tools_cache.clear()


class Validations:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def __call__(self, tools: Any) -> None:
        self.seen.append(tools)


def parse(raw: bytes, scope: Any = 1, validate: Any = None) -> dict[str, Any]:
    return body_parse(raw, scope=scope, tools_validate=validate or Validations())


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_a_claude_code_body_parses_as_orjson_parses_it(path: Path) -> None:
    raw = path.read_bytes()
    parsed = parse(raw)
    expected = orjson.loads(raw)
    assert parsed == expected
    assert list(parsed) == list(expected)  # same key order
    assert isinstance(parsed["tools"], SharedTools)
    assert orjson.dumps(parsed) == orjson.dumps(expected)  # a SharedTools serialises as the list it is
    compact = orjson.dumps(expected)  # as the CLI sends it (JSON.stringify); a second turn takes the known tools
    first, again = parse(compact, scope=2), parse(compact, scope=2)
    assert again == first == expected and list(again) == list(expected) and again["tools"] is first["tools"]


def test_the_same_tools_bytes_in_the_same_scope_are_parsed_and_validated_once() -> None:
    validate = Validations()
    first = parse(b'{"model":"a","tools":[{"name":"Read"}]}', validate=validate)
    second = parse(b'{"model":"b","tools":[{"name":"Read"}],"stream":true}', validate=validate)
    assert first["tools"] is second["tools"]
    assert validate.seen == [[{"name": "Read"}]]
    assert second == {"model": "b", "tools": [{"name": "Read"}], "stream": True}


def test_other_scopes_and_other_bytes_get_their_own_tools() -> None:
    validate = Validations()
    raw = b'{"tools":[{"name":"Read"}]}'
    mine, theirs = parse(raw, scope=1, validate=validate), parse(raw, scope=2, validate=validate)
    spaced = parse(b'{"tools":[{"name": "Read"}]}', scope=1, validate=validate)
    assert mine["tools"] is not theirs["tools"]  # one user's tools are never handed to another
    assert spaced["tools"] is not mine["tools"]
    assert mine["tools"] == theirs["tools"] == spaced["tools"]
    assert len(validate.seen) == 3


def test_tools_alike_at_both_ends_are_told_apart_by_their_middle() -> None:
    """The cache hashes a tools array's length and ends only (gateway/wire/body.py): same-length arrays whose first
    and last 64 bytes match still get their own entries, and a hash collision never hands one the other's tools."""
    pad = "x" * 100
    one = f'{{"tools":[{{"name":"{pad}","description":"A{pad}"}}]}}'.encode()
    two = f'{{"tools":[{{"name":"{pad}","description":"B{pad}"}}]}}'.encode()
    assert len(one) == len(two) and one[:80] == two[:80] and one[-80:] == two[-80:]
    validate = Validations()
    first, second, again = parse(one, validate=validate), parse(two, validate=validate), parse(one, validate=validate)
    assert first["tools"][0]["description"] == "A" + pad and second["tools"][0]["description"] == "B" + pad
    assert again["tools"] is first["tools"] and second["tools"] is not first["tools"]
    assert len(validate.seen) == 2


def test_tools_that_fail_validation_are_not_kept() -> None:
    class Refuse(ValueError):
        pass

    def refuse(tools: Any) -> None:
        raise Refuse("tools.0.name: too short")

    raw = b'{"tools":[{"name":""}]}'
    for _ in range(2):  # the second time is validated (and refused) again: nothing was kept
        with pytest.raises(Refuse):
            parse(raw, validate=refuse)


def test_shared_tools_are_read_only_and_copies_are_plain_lists() -> None:
    tools = parse(b'{"tools":[{"name":"Read"},{"name":"Edit"}]}')["tools"]
    for change in (
        lambda t: t.append({}),
        lambda t: t.extend([{}]),
        lambda t: t.insert(0, {}),
        lambda t: t.pop(),
        lambda t: t.remove(t[0]),
        lambda t: t.clear(),
        lambda t: t.sort(key=str),
        lambda t: t.reverse(),
        lambda t: t.__setitem__(0, {}),
        lambda t: t.__delitem__(0),
        lambda t: t.__iadd__([{}]),
        lambda t: t.__imul__(2),
    ):
        with pytest.raises(TypeError, match="read-only"):
            change(tools)
    assert tools == [{"name": "Read"}, {"name": "Edit"}]
    for copied in (list(tools), tools[:], copy.copy(tools), copy.deepcopy(tools), pickle.loads(pickle.dumps(tools))):
        assert type(copied) is list
        assert copied == tools
        copied.append({"name": "Write"})  # changeable, and the shared one is untouched
    assert len(tools) == 2
    merged = tools + [{"name": "Write"}]  # noqa: RUF005  (what tools_for_backend does)
    assert type(merged) is list and len(merged) == 3


def test_null_tools_and_a_body_without_tools() -> None:
    assert parse(b'{"tools":null,"model":"m"}') == {"tools": None, "model": "m"}
    assert parse(b'{"model":"m"}') == {"model": "m"}


@pytest.mark.parametrize(
    "raw",
    [b'{"max_tokens": 99999999999999999999999}', b'{"a": 1, "a": 2}', b' {"a": [] } ', b'{"a": "\\u00e9\\n"}'],
)
def test_edge_cases_parse_as_orjson_parses_them(raw: bytes) -> None:
    assert parse(raw) == orjson.loads(raw)


def test_tools_over_the_size_bound_are_parsed_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(body_module, "TOOLS_CACHE_MAX_BYTES", 10)
    validate = Validations()
    raw = b'{"tools":[{"name":"Read"}]}'
    first, second = parse(raw, validate=validate), parse(raw, validate=validate)
    assert type(first["tools"]) is list and first["tools"] == [{"name": "Read"}]
    assert first["tools"] is not second["tools"]
    assert len(validate.seen) == 2


def test_the_cache_keeps_the_most_recently_used_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools_cache, "_entries", 2)
    validate = Validations()
    raws = [b'{"tools":[{"name":"A"}]}', b'{"tools":[{"name":"B"}]}', b'{"tools":[{"name":"C"}]}']
    a = parse(raws[0], validate=validate)["tools"]
    parse(raws[1], validate=validate)
    assert parse(raws[0], validate=validate)["tools"] is a  # A used again: B is now the oldest
    parse(raws[2], validate=validate)  # evicts B
    assert parse(raws[0], validate=validate)["tools"] is a
    parse(raws[1], validate=validate)
    assert [t[0]["name"] for t in validate.seen] == ["A", "B", "C", "B"]


class CountingTop:
    """Counts the general path's top-level splits (``_TOP.decode``)."""

    def __init__(self) -> None:
        self.calls = 0
        self.real = body_module._TOP

    def decode(self, raw: bytes) -> Any:
        self.calls += 1
        return self.real.decode(raw)


TOOLS = b'[{"name":"Read","input_schema":{"type":"object"}},{"name":"Bash"}]'


@pytest.fixture
def top(monkeypatch: pytest.MonkeyPatch) -> CountingTop:
    counting = CountingTop()
    monkeypatch.setattr(body_module, "_TOP", counting)
    return counting


def test_a_turn_with_the_tools_of_the_last_is_parsed_without_splitting_the_tools(top: CountingTop) -> None:
    first = parse(b'{"model":"m","messages":[{"role":"user","content":"a"}],"tools":' + TOOLS + b',"stream":true}')
    assert top.calls == 1
    raw = b'{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}],"tools":'
    raw += TOOLS + b',"stream":true}'
    second = parse(raw)
    assert top.calls == 1  # found by its member name and compared, the rest parsed around it
    assert second["tools"] is first["tools"]
    assert second == orjson.loads(raw) and list(second) == list(orjson.loads(raw))  # same keys, same order


@pytest.mark.parametrize(
    "raw",
    [
        # The same tools nested in a message, before the body's own (other) tools: each keeps its own value.
        b'{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"x"}],'
        b'"x":{"tools":' + TOOLS + b'}}],"tools":[{"name":"Other"}]}',
        # Nested only: the body has no tools of its own.
        b'{"model":"m","meta":{"tools":' + TOOLS + b"}}",
        # A duplicate member: the later one is the body's, as orjson has it.
        b'{"tools":' + TOOLS + b',"tools":[{"name":"Later"}]}',
        # Not compact, and a member name that only ends like it.
        b'{"tools": ' + TOOLS + rb',"x\"tools":' + TOOLS + b"}",
        # The tools' bytes followed by more of a longer array.
        b'{"tools":' + TOOLS[:-1] + b',{"name":"More"}]}',
    ],
)
def test_known_tools_found_elsewhere_leave_the_body_as_orjson_parses_it(raw: bytes) -> None:
    parse(b'{"tools":' + TOOLS + b"}")  # this scope's last tools
    assert parse(raw) == orjson.loads(raw)


def test_many_nested_tools_members_before_the_bodys_own_fall_back_to_the_general_split(top: CountingTop) -> None:
    parse(b'{"tools":' + TOOLS + b"}")
    nested = b",".join(b'{"tools":[]}' for _ in range(body_module._TOOLS_MEMBER_TRIES))
    raw = b'{"messages":[' + nested + b'],"tools":' + TOOLS + b"}"
    assert parse(raw) == orjson.loads(raw)
    assert top.calls == 2  # looked at _TOOLS_MEMBER_TRIES members, then split the body the general way


def test_a_body_with_the_known_tools_and_an_error_elsewhere_is_refused_as_before() -> None:
    parse(b'{"tools":' + TOOLS + b"}")
    with pytest.raises(BodyError, match="request body is not valid JSON"):
        parse(b'{"model":"m",,"tools":' + TOOLS + b"}")
    with pytest.raises(BodyError, match="request body must be a JSON object"):
        parse(b'["tools":' + TOOLS + b"]")  # not JSON either way
    with pytest.raises(BodyError, match="request body is not valid JSON"):
        parse(b'{"model":"\xff","tools":' + TOOLS + b"}")  # invalid UTF-8 beside the known tools


def test_known_tools_of_another_scope_are_not_used(top: CountingTop) -> None:
    mine = parse(b'{"tools":' + TOOLS + b"}", scope=1)
    theirs = parse(b'{"tools":' + TOOLS + b"}", scope=2)
    assert theirs["tools"] is not mine["tools"] and top.calls == 2
    assert parse(b'{"tools":' + TOOLS + b"}", scope=2)["tools"] is theirs["tools"] and top.calls == 2


def test_an_evicted_entry_is_no_longer_a_scopes_last(monkeypatch: pytest.MonkeyPatch, top: CountingTop) -> None:
    monkeypatch.setattr(tools_cache, "_entries", 1)
    first = parse(b'{"tools":' + TOOLS + b"}", scope=1)
    parse(b'{"tools":[{"name":"B"}]}', scope=2)  # evicts scope 1's entry
    again = parse(b'{"tools":' + TOOLS + b"}", scope=1)
    assert again["tools"] is not first["tools"] and top.calls == 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[1, 2]", "request body must be a JSON object"),
        (b'"text"', "request body must be a JSON object"),
        (b"", "request body is not valid JSON"),
        (b'{"model": "m",', "request body is not valid JSON"),
        (b'{"model": "m"} trailing', "request body is not valid JSON"),
        (b'{"messages": [1, 2,]}', "request body is not valid JSON"),
        (b'{"model": "\xff"}', "request body is not valid JSON"),  # invalid UTF-8 in a field
        (b'{"tools": [{"name": "\xff"}]}', "request body is not valid JSON"),  # and in the tools
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(BodyError, match=message):
        parse(raw)
    assert len(tools_cache._items) == 0
