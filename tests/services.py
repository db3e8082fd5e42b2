"""Gating of tests that need real Redis/PostgreSQL: skip loudly on a laptop, fail in CI.

CI sets LYNKR_TEST_SERVICES=required (.ci/run), which turns a missing service into a failure.
"""

from __future__ import annotations

import os
import socket

import pytest

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_HOST, PG_PORT = "127.0.0.1", 5432


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _answers(host, port):
        return
    message = f"SERVICE MISSING: {name} is not answering on {host}:{port}"
    if os.environ.get("LYNKR_TEST_SERVICES") == "required":
        pytest.fail(message + " and LYNKR_TEST_SERVICES=required")
    pytest.skip(message + " - skipping (start it, or run .ci/run)")


def require_redis() -> str:
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
