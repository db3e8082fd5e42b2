"""Tool input schemas for backends (pure).

By default a tool's JSON Schema is sent whole. Some backends reject keywords Claude Code uses (claude-code-wire.md
§3 and §7: ``$schema``, ``propertyNames``, ``exclusiveMinimum``, ``maximum: 9007199254740991``, ``format``); a
provider with the ``strict_schema`` option gets them removed or rewritten into what such servers accept.
"""

from __future__ import annotations

from typing import Any

# Keywords strict OpenAI-style / Gemini-style validators refuse; removing them only loosens validation.
_DROP = frozenset({"$schema", "$id", "propertyNames", "format", "exclusiveMinimum", "exclusiveMaximum", "examples"})
_INT32 = 2**31 - 1


def schema_clean_strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [schema_clean_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP:
            continue
        if key in ("maximum", "minimum") and isinstance(value, int | float) and abs(value) > _INT32:
            continue  # e.g. Number.MAX_SAFE_INTEGER: no real bound, and int64 overflows some validators
        if key == "const":
            out["enum"] = [value]
            continue
        if key in ("default", "enum", "examples"):
            out[key] = value  # data, not schema: kept as given
        elif key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(value, dict):
            out[key] = {name: schema_clean_strict(sub) for name, sub in value.items()}
        else:
            out[key] = schema_clean_strict(value)
    return out


def schema_for_tool(schema: Any, *, strict: bool) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    if strict:
        cleaned: dict[str, Any] = schema_clean_strict(schema)
        return cleaned
    return schema
