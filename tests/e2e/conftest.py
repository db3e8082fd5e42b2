from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.server import LynkrServer
from tests.mocks.anthropic_upstream import MockAnthropicUpstream


@pytest.fixture(scope="module")
def module_upstream() -> Iterator[MockAnthropicUpstream]:
    with MockAnthropicUpstream() as mock:
        yield mock


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, module_upstream: MockAnthropicUpstream) -> Iterator[LynkrServer]:
    """Lynkr seeded from Lynkr's own variable names, pointing at the mock (Azure-style full URL)."""
    server = LynkrServer(
        data_dir=tmp_path_factory.mktemp("lynkr"),
        env_extra={
            "MODEL_PROVIDER": "azure-anthropic",
            "AZURE_ANTHROPIC_ENDPOINT": f"{module_upstream.url}/anthropic/v1/messages",
            "AZURE_ANTHROPIC_API_KEY": "upstream-secret",
            "LYNKR_MAX_BODY_BYTES": str(1024 * 1024),
            # These tests check how each upstream failure is shown; retries are tested on their own.
            "API_RETRY_MAX_RETRIES": "0",
        },
    ).start()
    assert server.api_key.startswith("sk-lynkr-"), server.log()
    yield server
    server.stop()
    log = server.log()
    # No secret in a log line: neither the upstream credential nor the client's key.
    assert "upstream-secret" not in log
    assert server.api_key not in log.split("serving on", 1)[1]
