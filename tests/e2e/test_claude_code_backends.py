"""The real Claude Code CLI through Lynkr on non-Anthropic backends: openai_chat, azure_openai, openai_responses
and ollama, each a loopback mock speaking that backend's documented wire format and scripting the tool calls.

Each scenario is judged by its side effect (file written, command output reported, file edited, image seen) and
by ``permission_denials``; and each turn must cost exactly one upstream call (a broken stream would make the CLI
redo the turn non-streaming, claude-code-wire.md §5).
"""

from __future__ import annotations

import shutil
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.claude_cli import CLAUDE_VERSIONS, ensure_claude, run_claude
from tests.e2e.server import LynkrServer
from tests.mocks.ollama_upstream import MockOllamaUpstream
from tests.mocks.openai_upstream import MockOpenAIUpstream
from tests.mocks.responses_upstream import MockResponsesUpstream

pytestmark = pytest.mark.e2e

UPSTREAM_KEY = "sk-upstream-secret"


@dataclass
class Backend:
    name: str
    mock: Any
    server: LynkrServer

    def upstream_calls(self) -> int:
        """Model calls only (not Ollama's /api/show capability probe)."""
        calls = self.mock.responses_requests if self.name == "openai_responses" else self.mock.chat_requests
        return len(calls)


def _env(name: str, url: str) -> dict[str, str]:
    if name == "openai_chat":
        return {"MODEL_PROVIDER": "openai", "OPENAI_API_KEY": UPSTREAM_KEY,
                "OPENAI_ENDPOINT": f"{url}/v1/chat/completions", "OPENAI_MODEL": "gpt-mock"}  # fmt: skip
    if name == "azure_openai":
        return {"MODEL_PROVIDER": "azure-openai", "AZURE_OPENAI_ENDPOINT": url, "AZURE_OPENAI_API_KEY": UPSTREAM_KEY,
                "AZURE_OPENAI_DEPLOYMENT": "gpt-deployment"}  # fmt: skip
    if name == "openai_responses":
        return {"MODEL_PROVIDER": "azure-openai", "AZURE_OPENAI_ENDPOINT": f"{url}/openai/v1/responses",
                "AZURE_OPENAI_API_KEY": UPSTREAM_KEY, "AZURE_OPENAI_DEPLOYMENT": "gpt-5-mock"}  # fmt: skip
    return {"MODEL_PROVIDER": "ollama", "OLLAMA_ENDPOINT": url, "OLLAMA_MODEL": "qwen3:8b"}


def _mock(name: str) -> Any:
    if name in ("openai_chat", "azure_openai"):
        return MockOpenAIUpstream(api_key=UPSTREAM_KEY)
    if name == "openai_responses":
        return MockResponsesUpstream(api_key=UPSTREAM_KEY)
    return MockOllamaUpstream(
        models={"qwen3:8b": {"context_length": 40960, "capabilities": ["completion", "tools", "vision", "thinking"]}}
    )


@pytest.fixture(scope="module", params=["openai_chat", "azure_openai", "openai_responses", "ollama"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    name = str(request.param)
    with _mock(name) as mock:
        server = LynkrServer(data_dir=tmp_path_factory.mktemp(f"lynkr-{name}"), env_extra=_env(name, mock.url)).start()
        try:
            yield Backend(name, mock, server)
        finally:
            server.stop()
        assert mock.errors == [], mock.errors
        assert UPSTREAM_KEY not in server.log()


def _png(path: Path) -> None:
    """A valid 8x8 red PNG, written with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 8 for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


SCENARIOS = ["write", "bash", "edit", "image"]


@pytest.mark.parametrize("version", CLAUDE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_claude_code_through_backend(backend: Backend, scenario: str, version: str, tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("CLAUDE CODE E2E SKIPPED: npm is not installed, so @anthropic-ai/claude-code cannot be installed")
    binary = ensure_claude(version)
    assert binary is not None
    cwd = tmp_path / "project"
    cwd.mkdir()
    if scenario == "write":
        prompt, turns = "Create a file hello.txt containing hi", 2
    elif scenario == "bash":
        prompt, turns = "Run the command: echo lynkr-$((6*7))", 2
    elif scenario == "edit":
        (cwd / "notes.txt").write_text("alpha beta\n")
        prompt, turns = "Replace alpha with gamma in notes.txt", 3
    else:
        _png(cwd / "pic.png")
        prompt, turns = "Describe the image pic.png", 2
    before = backend.upstream_calls()
    result = run_claude(binary, base_url=backend.server.url, api_key=backend.server.api_key, cwd=cwd, prompt=prompt)
    detail = (
        f"[{backend.name} {scenario} {version}] stdout={result.stdout[-2500:]}\nstderr={result.stderr[-1500:]}\n"
        f"server log:\n{backend.server.log()[-2500:]}"
    )
    assert result.returncode == 0, detail
    assert not result.is_error, detail
    assert result.permission_denials == [], detail
    if scenario == "write":
        assert (cwd / "hello.txt").read_text().strip() == "hi", detail
        assert result.text.strip() == "DONE", detail
    elif scenario == "bash":
        assert "OUTPUT: lynkr-42" in result.text, detail
    elif scenario == "edit":
        assert (cwd / "notes.txt").read_text() == "gamma beta\n", detail
        assert result.text.strip() == "DONE", detail
    else:
        assert result.text.strip() == "IMAGE SEEN", detail
    assert backend.upstream_calls() - before == turns, detail
