"""Tool names for backends that limit them (toolnames.py): ``^[a-zA-Z0-9_-]{1,64}$``
(https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools), shortened reversibly."""

from __future__ import annotations

import hashlib
import re

import pytest

from providers.adapters.common.toolnames import toolname_encode, toolname_reverse_map

VALID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@pytest.mark.parametrize("name", ["Read", "mcp__github__create_issue", "a" * 64, "x-y_z-0"])
def test_valid_names_are_kept(name: str) -> None:
    assert toolname_encode(name) == name


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("a" * 65, "a" * 55),
        ("mcp__github.com__create.issue", "mcp__github_com__create_issue"),
        ("Bash(git status)", "Bash_git_status_"),
        ("", ""),
        ("名前", "__"),
    ],
)
def test_invalid_names_are_sanitised_prefix_plus_hash(name: str, prefix: str) -> None:
    encoded = toolname_encode(name)
    assert VALID.match(encoded)
    assert len(encoded) <= 64
    assert encoded == f"{prefix}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    assert toolname_encode(name) == encoded  # deterministic: no state needed between requests


def test_names_differing_only_past_the_cut_stay_distinct() -> None:
    a, b = "m" * 70 + "a", "m" * 70 + "b"
    assert toolname_encode(a) != toolname_encode(b)


def test_reverse_map_holds_only_the_changed_names() -> None:
    long = "mcp__server__" + "x" * 60
    assert toolname_reverse_map(["Read", long, "a.b"]) == {toolname_encode(long): long, toolname_encode("a.b"): "a.b"}
    assert toolname_reverse_map([]) == {}
