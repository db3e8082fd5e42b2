from __future__ import annotations

import pytest

from tests.workspace.web.servers import closed_port, loopback_only, server, silent_port

__all__ = ["closed_port", "loopback_only", "server", "silent_port"]


@pytest.fixture(autouse=True)
def _no_traffic_off_loopback(loopback_only: list[str]) -> None:
    """Every test here runs with the network guard on."""
