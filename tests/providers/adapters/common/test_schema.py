"""Tool input schemas for backends (schema.py): whole by default, cleaned for strict validators.

The keywords Claude Code uses: claude-code-wire.md §3 (``$schema``, ``propertyNames``, ``exclusiveMinimum``,
``maximum: 9007199254740991``, ``format``, ``const``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from providers.adapters.common.schema import schema_clean_strict, schema_for_tool

CLAUDE_CODE_BASH = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "command": {"description": "The command to execute", "type": "string"},
        "timeout": {
            "description": "Optional timeout in milliseconds",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 9007199254740991,
        },
        "run_in_background": {"type": "boolean"},
        "env": {"type": "object", "propertyNames": {"type": "string"}, "additionalProperties": {"type": "string"}},
        "url": {"type": "string", "format": "uri"},
        "mode": {"const": "default"},
    },
    "required": ["command"],
    "additionalProperties": False,
}


def test_schema_is_sent_whole_by_default() -> None:
    assert schema_for_tool(CLAUDE_CODE_BASH, strict=False) is CLAUDE_CODE_BASH


@pytest.mark.parametrize("schema", [None, "object", [], 3])
def test_missing_or_odd_schema_becomes_an_empty_object(schema: Any) -> None:
    assert schema_for_tool(schema, strict=False) == {"type": "object", "properties": {}}
    assert schema_for_tool(schema, strict=True) == {"type": "object", "properties": {}}


def test_strict_cleaning_of_a_claude_code_schema() -> None:
    original = copy.deepcopy(CLAUDE_CODE_BASH)
    assert schema_for_tool(CLAUDE_CODE_BASH, strict=True) == {
        "type": "object",
        "properties": {
            "command": {"description": "The command to execute", "type": "string"},
            "timeout": {"description": "Optional timeout in milliseconds", "type": "number"},
            "run_in_background": {"type": "boolean"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "url": {"type": "string"},
            "mode": {"enum": ["default"]},
        },
        "required": ["command"],
        "additionalProperties": False,
    }
    assert original == CLAUDE_CODE_BASH  # not modified in place


@pytest.mark.parametrize(
    ("schema", "cleaned"),
    [
        ({"$id": "x", "examples": [1], "exclusiveMaximum": 5, "type": "integer"}, {"type": "integer"}),
        ({"maximum": 2**31 - 1, "minimum": -(2**31) + 1}, {"maximum": 2**31 - 1, "minimum": -(2**31) + 1}),
        ({"maximum": 2**31, "minimum": -(2**31)}, {}),
        ({"maximum": 1e12, "minimum": 0.5}, {"minimum": 0.5}),
        ({"maximum": "big"}, {"maximum": "big"}),
        (
            {"anyOf": [{"const": 1}, {"type": "string", "format": "date"}]},
            {"anyOf": [{"enum": [1]}, {"type": "string"}]},
        ),
        (
            {"type": "array", "items": [{"format": "x", "type": "string"}], "prefixItems": [{"$schema": "s"}]},
            {"type": "array", "items": [{"type": "string"}], "prefixItems": [{}]},
        ),
        (
            {"$defs": {"format": {"type": "string", "format": "email"}}, "definitions": {"x": {"const": None}}},
            {"$defs": {"format": {"type": "string"}}, "definitions": {"x": {"enum": [None]}}},
        ),
        ({"patternProperties": {"^format$": {"format": "uri"}}}, {"patternProperties": {"^format$": {}}}),
        (
            {"properties": {"format": {"type": "string"}, "$schema": {"type": "string"}}},
            {"properties": {"format": {"type": "string"}, "$schema": {"type": "string"}}},
        ),
        ({"properties": "not an object"}, {"properties": "not an object"}),
        (
            {"required": ["format", "$schema"], "enum": ["format"]},
            {"required": ["format", "$schema"], "enum": ["format"]},
        ),
    ],
)
def test_strict_cleaning_rules(schema: dict[str, Any], cleaned: dict[str, Any]) -> None:
    assert schema_clean_strict(schema) == cleaned


def test_scalars_and_lists_pass_through() -> None:
    assert schema_clean_strict("x") == "x"
    assert schema_clean_strict([{"format": "uri"}, 1]) == [{}, 1]


def test_default_values_are_data_not_schema() -> None:
    schema = {"type": "object", "default": {"format": "json", "propertyNames": 1}}
    assert schema_clean_strict(schema) == schema
