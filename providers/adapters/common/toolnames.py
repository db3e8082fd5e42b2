"""Tool names for backends that limit them (pure, reversible without state).

OpenAI-style function names must match ``^[a-zA-Z0-9_-]{1,64}$``. Longer or non-conforming names (MCP tools are
often ``mcp__server__tool_with_a_long_name``) are shortened deterministically: sanitised prefix + ``_`` + 8 hex of
the name's SHA-256. The reverse map is rebuilt from each request's own tool list, so no state is kept.
"""

from __future__ import annotations

import hashlib
import re

_VALID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def toolname_encode(name: str) -> str:
    if _VALID.match(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{_INVALID_CHARS.sub('_', name)[:55]}_{digest}"


def toolname_reverse_map(names: list[str]) -> dict[str, str]:
    """encoded -> original, for the names whose encoding differs."""
    return {encoded: name for name in names if (encoded := toolname_encode(name)) != name}
