"""The tool registry: argument validation, policy filtering and policy checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workspace.info import PolicyInfo, ToolContext, WorkspaceInfo
from workspace.tools import registry
from workspace.tools.registry import ToolDenied, ToolError, ToolNotFound, ToolSpec, tool_call


@pytest.fixture
def echo_tool(monkeypatch: pytest.MonkeyPatch) -> ToolSpec:
    monkeypatch.setattr(registry, "_registry", dict(registry.tool_specs()))
    spec = ToolSpec(
        name="test_echo",
        description="echo",
        input_schema={
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": 5}, "loud": {"type": "boolean"}},
            "required": ["text"],
            "additionalProperties": False,
        },
        handler=lambda ctx, args: {"echo": args["text"].upper() if args.get("loud") else args["text"]},
        policy_check=lambda policy, args: "no shouting" if args.get("loud") and policy.name == "quiet" else None,
    )
    return registry.register(spec)


def _ctx(policy: PolicyInfo | None = None) -> ToolContext:
    return ToolContext(
        workspace=WorkspaceInfo(id=1, name="w", root=Path("/"), policy=policy or PolicyInfo()), user_id=1
    )


def test_call_validates_and_runs(echo_tool: ToolSpec) -> None:
    assert tool_call(name="test_echo", arguments={"text": "hi"}, context=_ctx()) == {"echo": "hi"}
    with pytest.raises(ToolError, match="text"):
        tool_call(name="test_echo", arguments={"text": "far too long"}, context=_ctx())
    with pytest.raises(ToolError, match="required"):
        tool_call(name="test_echo", arguments={}, context=_ctx())
    with pytest.raises(ToolError, match="Additional properties"):
        tool_call(name="test_echo", arguments={"text": "x", "rm": True}, context=_ctx())


def test_policy_filters_and_checks(echo_tool: ToolSpec) -> None:
    with pytest.raises(ToolDenied, match="not allowed by policy"):
        tool_call(name="test_echo", arguments={"text": "x"}, context=_ctx(PolicyInfo(denied_tools=("test_*",))))
    with pytest.raises(ToolDenied, match="no shouting"):
        tool_call(name="test_echo", arguments={"text": "x", "loud": True}, context=_ctx(PolicyInfo(name="quiet")))
    only = PolicyInfo(allowed_tools=("test_echo",))
    assert [s.name for s in registry.tools_for_policy(only)] == ["test_echo"]
    with pytest.raises(ToolNotFound):
        tool_call(name="nope", arguments={}, context=_ctx())


def test_duplicate_names_and_bad_schemas_are_refused(echo_tool: ToolSpec) -> None:
    with pytest.raises(ValueError, match="twice"):
        registry.register(ToolSpec("test_echo", "other", {"type": "object"}, lambda c, a: {}))
    import jsonschema

    with pytest.raises(jsonschema.SchemaError):
        registry.register(ToolSpec("test_bad", "bad", {"type": "no-such-type"}, lambda c, a: {}))


def test_every_registered_tool_has_a_strict_object_schema() -> None:
    specs: dict[str, Any] = registry.tool_specs()
    expected = {
        "workspace_index_rebuild", "project_summary", "workspace_symbol_search", "workspace_symbol_references",
        "workspace_goto_definition", "workspace_search", "workspace_list", "fs_read", "workspace_git_status",
        "workspace_diff", "workspace_diff_summary", "workspace_diff_review", "workspace_git_stage",
        "workspace_git_unstage", "workspace_git_commit", "workspace_git_push", "workspace_git_pull",
        "workspace_git_branches", "workspace_release_notes", "workspace_test_run", "workspace_test_history",
        "workspace_test_summary", "workspace_task_create", "workspace_tasks_list", "workspace_task_get",
        "workspace_task_update", "workspace_task_set_status", "workspace_task_delete", "web_search", "web_fetch",
    }  # fmt: skip
    assert expected <= set(specs), sorted(expected - set(specs))
    for spec in specs.values():
        assert spec.input_schema["type"] == "object", spec.name
        assert spec.input_schema.get("additionalProperties") is False, spec.name
        assert len(spec.description) > 20, spec.name
