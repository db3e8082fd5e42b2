"""Frozen values that describe a workspace and its policy to tools (never model instances)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

# Always refused by fs_read, whatever the policy says: credentials are not source.
ALWAYS_DENIED_GLOBS = (".env", ".env.*", "**/.env", "**/.env.*", "*.pem", "**/*.pem", ".git/**", "**/.git/**")


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    name: str = "default"
    tool_execution_mode: str = "client"
    max_steps: int = 8
    max_tool_calls: int = 32
    progress_lines: bool = False
    allowed_tools: tuple[str, ...] = ()
    denied_tools: tuple[str, ...] = ()
    fs_allow_globs: tuple[str, ...] = ()
    fs_deny_globs: tuple[str, ...] = ()
    git_allow_push: bool = False
    git_require_tests: bool = False
    git_commit_pattern: str = ""
    web_enabled: bool = True
    record_transcripts: bool = True

    def allows_tool(self, name: str) -> bool:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.denied_tools):
            return False
        return not self.allowed_tools or any(fnmatch.fnmatchcase(name, pattern) for pattern in self.allowed_tools)

    def allows_path(self, relative: str) -> bool:
        """``relative`` is '/'-separated and inside the root (checked before this is asked)."""
        if any(_glob_match(relative, pattern) for pattern in (*ALWAYS_DENIED_GLOBS, *self.fs_deny_globs)):
            return False
        return not self.fs_allow_globs or any(_glob_match(relative, pattern) for pattern in self.fs_allow_globs)


def _glob_match(relative: str, pattern: str) -> bool:
    # fnmatch's "*" already crosses "/", so "**/x" also matches "x" at the top only via the plain form.
    if fnmatch.fnmatchcase(relative, pattern):
        return True
    return pattern.startswith("**/") and fnmatch.fnmatchcase(relative, pattern[3:])


@dataclass(frozen=True, slots=True)
class WorkspaceInfo:
    id: int
    name: str
    root: Path
    git_remote: str = ""
    default_branch: str = ""
    test_command: str = ""
    test_timeout_seconds: float = 600.0
    test_sandbox: str = "auto"
    coverage_files: tuple[str, ...] = ()
    ignore_globs: tuple[str, ...] = ()
    policy: PolicyInfo = field(default_factory=PolicyInfo)


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who calls a tool, in which workspace. Handlers get this and the validated arguments."""

    workspace: WorkspaceInfo
    user_id: int
    api_key_id: int | None = None
    request_id: str = ""
