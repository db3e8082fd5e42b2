"""The real Claude Code CLI through Lynkr: the newest npm version and 2.1.197 (claude-code-wire.md §8).

Judged by side effects (the file exists with the content) and by ``permission_denials`` as well as the exit code
(claude-code-wire.md §6).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.claude_cli import CLAUDE_VERSIONS, ensure_claude, run_claude
from tests.e2e.server import LynkrServer
from tests.mocks.anthropic_upstream import MockAnthropicUpstream

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("version", CLAUDE_VERSIONS)
def test_claude_creates_file_through_gateway(
    version: str, tmp_path: Path, gateway: LynkrServer, module_upstream: MockAnthropicUpstream
) -> None:
    if shutil.which("npm") is None:
        pytest.skip("CLAUDE CODE E2E SKIPPED: npm is not installed, so @anthropic-ai/claude-code cannot be installed")
    binary = ensure_claude(version)
    assert binary is not None
    cwd = tmp_path / "project"
    cwd.mkdir()
    calls_before = len(module_upstream.messages_requests)
    result = run_claude(
        binary, base_url=gateway.url, api_key=gateway.api_key, cwd=cwd, prompt="Create a file hello.txt containing hi"
    )
    detail = f"stdout={result.stdout[-3000:]}\nstderr={result.stderr[-3000:]}\nserver log:\n{gateway.log()[-3000:]}"
    assert result.returncode == 0, detail
    assert not result.is_error, detail
    assert (cwd / "hello.txt").read_text().strip() == "hi", detail
    assert result.permission_denials == [], detail
    calls = module_upstream.messages_requests[calls_before:]
    # Turn 1 (tool_use Write) and turn 2 (tool_result -> DONE) only: a broken stream would have made the CLI
    # re-send the turn non-streaming, a third call.
    assert len(calls) == 2, [c.path for c in calls]
    assert all(c.headers.get("x-api-key") == "upstream-secret" for c in calls)
    assert result.text.strip() == "DONE"
