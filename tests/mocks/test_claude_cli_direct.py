"""The real Claude Code CLI against the mock upstream directly (no gateway).

Proves the mock speaks enough of the Messages API for the CLI, so a failure in a
gateway e2e test is the gateway's, not the mock's.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.claude_cli import CLAUDE_VERSIONS, ensure_claude, run_claude
from tests.mocks.anthropic_upstream import MockAnthropicUpstream

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("version", CLAUDE_VERSIONS)
def test_cli_creates_file_through_mock(version: str, tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("E2E SKIPPED: npm not installed, cannot get @anthropic-ai/claude-code")
    binary = ensure_claude(version)
    assert binary is not None
    cwd = tmp_path / "project"
    cwd.mkdir()
    with MockAnthropicUpstream() as mock:
        result = run_claude(
            binary,
            base_url=mock.url,
            api_key="sk-test",
            cwd=cwd,
            prompt="Create a file hello.txt containing hi",
        )
    calls = mock.messages_requests
    summary = Counter(
        (
            r.method,
            r.path,
            r.body.get("model") if isinstance(r.body, dict) else None,
            r.body.get("stream") if isinstance(r.body, dict) else None,
        )
        for r in mock.requests
    )
    print(f"\n[{version} -> {binary}] {result.elapsed:.1f}s exit={result.returncode}")
    for (method, path, model, stream), count in summary.items():
        print(f"  {count} x {method} {path} model={model} stream={stream}")

    detail = f"stdout={result.stdout[-2000:]}\nstderr={result.stderr[-2000:]}"
    assert result.returncode == 0, detail
    assert not result.is_error, detail
    assert (cwd / "hello.txt").read_text().strip() == "hi", detail
    assert result.permission_denials == []
    assert mock.errors == []
    # Turn 1 -> tool_use Write; turn 2 carries the tool_result and gets DONE.
    assert len(calls) >= 2
    assert result.text.strip() == "DONE"
    assert all(r.headers.get("x-api-key") == "sk-test" for r in calls)
