"""The symbol tools through the registry: validation, policy filtering, results the model reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.workspace.repos import make_repo
from workspace.info import ToolContext
from workspace.tools.registry import ToolError, tool_call, tool_specs

pytestmark = pytest.mark.django_db

FILES: dict[str, str | bytes] = {
    "shop/__init__.py": "",
    "shop/pricing.py": "TAX = 0.2\n\n\ndef net_price(gross):\n    return gross / (1 + TAX)\n\n\nclass Cart:\n"
    "    def total(self, items):\n        return sum(net_price(i) for i in items)\n",
    "shop/views.py": "from shop.pricing import net_price\n\n\ndef show(item):\n    return net_price(item)\n",
    "legacy/pricing.py": "def net_price(gross):\n    return gross\n",
    "secret/keys.py": "def net_price_secret():\n    return 'hidden'\n",
}


@pytest.fixture
def indexed(tmp_path: Path, make_workspace: Callable[..., ToolContext]) -> Callable[..., ToolContext]:
    def make(**policy: object) -> ToolContext:
        root = make_repo(tmp_path / f"repo{len(list(tmp_path.iterdir()))}", FILES)
        ctx = make_workspace(root, policy=policy or None)
        assert tool_call(name="workspace_index_rebuild", arguments={"wait": True}, context=ctx)["status"] == "done"
        return ctx

    return make


def test_tools_are_registered_with_strict_schemas() -> None:
    specs = tool_specs()
    for name in ("workspace_symbol_search", "workspace_symbol_references", "workspace_goto_definition"):
        assert specs[name].input_schema["additionalProperties"] is False
        assert not specs[name].mutates
    assert specs["workspace_symbol_search"].input_schema["properties"]["limit"]["maximum"] == 200


def test_search_before_any_index_says_how_to_fix_it(tmp_path: Path, make_workspace: Callable[..., ToolContext]) -> None:
    ctx = make_workspace(make_repo(tmp_path / "r", {"a.py": "def a(): pass\n"}))
    with pytest.raises(ToolError, match="not been indexed yet; call workspace_index_rebuild"):
        tool_call(name="workspace_symbol_search", arguments={"query": "a"}, context=ctx)


def test_symbol_search(indexed: Callable[..., ToolContext]) -> None:
    ctx = indexed()
    result = tool_call(name="workspace_symbol_search", arguments={"query": "net_price"}, context=ctx)
    assert result["truncated"] is False
    assert [(s["name"], s["path"], s["kind"], s["line"]) for s in result["symbols"]] == [
        ("net_price", "legacy/pricing.py", "function", 1),
        ("net_price", "shop/pricing.py", "function", 4),
        ("net_price_secret", "secret/keys.py", "function", 1),
    ]
    limited = tool_call(name="workspace_symbol_search", arguments={"query": "net", "limit": 1}, context=ctx)
    assert len(limited["symbols"]) == 1 and limited["truncated"] is True
    method = tool_call(name="workspace_symbol_search", arguments={"query": "Cart.total"}, context=ctx)
    assert method["symbols"] == [
        {
            "name": "total",
            "kind": "method",
            "path": "shop/pricing.py",
            "line": 9,
            "end_line": 10,
            "column": 8,
            "container": "Cart",
        }
    ]
    constants = tool_call(name="workspace_symbol_search", arguments={"query": "tax", "kind": "constant"}, context=ctx)
    assert [s["name"] for s in constants["symbols"]] == ["TAX"]
    empty = tool_call(name="workspace_symbol_search", arguments={"query": "zzz"}, context=ctx)
    assert empty["symbols"] == [] and "workspace_index_rebuild" in empty["note"]


def test_results_hide_paths_the_policy_denies(indexed: Callable[..., ToolContext]) -> None:
    ctx = indexed(fs_deny_globs=["secret/**"])
    result = tool_call(name="workspace_symbol_search", arguments={"query": "net_price"}, context=ctx)
    assert "secret/keys.py" not in [s["path"] for s in result["symbols"]]
    assert len(result["symbols"]) == 2
    hidden = tool_call(name="workspace_goto_definition", arguments={"symbol": "net_price_secret"}, context=ctx)
    assert hidden["definitions"] == []


@pytest.mark.parametrize(
    "arguments",
    [
        {"query": ""},
        {"query": "x", "limit": 201},
        {"query": "x", "kind": "banana"},
        {"query": "x", "surprise": True},
        {},
    ],
)
def test_invalid_arguments_are_refused(indexed: Callable[..., ToolContext], arguments: dict[str, object]) -> None:
    with pytest.raises(ToolError, match="invalid arguments for workspace_symbol_search"):
        tool_call(name="workspace_symbol_search", arguments=arguments, context=indexed())


def test_references(indexed: Callable[..., ToolContext]) -> None:
    ctx = indexed()
    result = tool_call(name="workspace_symbol_references", arguments={"symbol": "net_price"}, context=ctx)
    assert result["references"] == [
        {"path": "shop/pricing.py", "line": 10, "column": 19, "kind": "call"},
        {"path": "shop/views.py", "line": 1, "column": 25, "kind": "import"},
        {"path": "shop/views.py", "line": 5, "column": 11, "kind": "call"},
    ]
    assert result["truncated"] is False
    one = tool_call(name="workspace_symbol_references", arguments={"symbol": "net_price", "limit": 1}, context=ctx)
    assert len(one["references"]) == 1 and one["truncated"] is True


def test_goto_definition_follows_the_imports_of_from_path(indexed: Callable[..., ToolContext]) -> None:
    ctx = indexed()
    plain = tool_call(name="workspace_goto_definition", arguments={"symbol": "net_price"}, context=ctx)
    assert [d["path"] for d in plain["definitions"]] == ["legacy/pricing.py", "shop/pricing.py"]
    ranked = tool_call(
        name="workspace_goto_definition",
        arguments={"symbol": "net_price", "from_path": "./shop/views.py"},
        context=ctx,
    )
    assert [d["path"] for d in ranked["definitions"]] == ["shop/pricing.py", "legacy/pricing.py"]
    assert ranked["definitions"][0]["line"] == 4


def test_goto_definition_refuses_paths_outside_the_workspace(indexed: Callable[..., ToolContext]) -> None:
    with pytest.raises(ToolError, match=r"'\.\.' is not allowed"):
        tool_call(
            name="workspace_goto_definition",
            arguments={"symbol": "x", "from_path": "../other/file.py"},
            context=indexed(),
        )


def test_output_stays_within_the_tool_output_budget(
    tmp_path: Path, make_workspace: Callable[..., ToolContext], settings: object
) -> None:
    source = "".join(f"def handler_{n:03d}():\n    pass\n\n\n" for n in range(60))
    ctx = make_workspace(make_repo(tmp_path / "many", {"very/long/directory/name/handlers.py": source}))
    tool_call(name="workspace_index_rebuild", arguments={"wait": True}, context=ctx)
    settings.LYNKR_TOOL_OUTPUT_MAX_BYTES = 2048  # type: ignore[attr-defined]
    result = tool_call(name="workspace_symbol_search", arguments={"query": "handler", "limit": 60}, context=ctx)
    assert result["truncated"] is True
    assert 5 < len(result["symbols"]) < 60
    assert len(json.dumps(result)) <= 2048
