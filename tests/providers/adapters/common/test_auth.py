"""The provider's credential as headers (auth.py); the client's key is never one of them."""

from __future__ import annotations

from typing import Any

import pytest

from providers.adapters.common.auth import auth_headers, extra_headers
from tests.providers.adapters.openai_chat.helpers import PROVIDER_KEY, provider


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("bearer", [("authorization", f"Bearer {PROVIDER_KEY}")]),
        ("api-key", [("api-key", PROVIDER_KEY)]),
        ("x-api-key", [("x-api-key", PROVIDER_KEY)]),
        ("something-else", [("x-api-key", PROVIDER_KEY)]),
        ("none", []),
    ],
)
def test_auth_styles(style: str, expected: list[tuple[str, str]]) -> None:
    assert auth_headers(provider(auth_style=style)) == expected


@pytest.mark.parametrize("style", ["bearer", "api-key", "x-api-key"])
def test_no_credential_no_header(style: str) -> None:
    assert auth_headers(provider(auth_style=style, credential="")) == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"HTTP-Referer": "https://lynkr.dev", "X-Title": "Lynkr"},
            [("http-referer", "https://lynkr.dev"), ("x-title", "Lynkr")],
        ),
        ({"X-Count": 3}, [("x-count", "3")]),
        ({}, []),
        (None, []),
        (["HTTP-Referer: x"], []),
        ("HTTP-Referer: x", []),
    ],
)
def test_extra_headers(extra: Any, expected: list[tuple[str, str]]) -> None:
    options = {} if extra is None else {"extra_headers": extra}
    assert extra_headers(provider(options=options)) == expected
