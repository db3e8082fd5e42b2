"""Wire facts of Anthropic-format upstreams: the Messages and count_tokens URLs."""

from __future__ import annotations

import pytest

from providers.adapters.anthropic.wire import DEFAULT_VERSION, count_tokens_url, messages_url


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1/", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1/messages", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1/messages/", "https://api.anthropic.com/v1/messages"),
        # Azure AI Foundry: AZURE_ANTHROPIC_ENDPOINT is the full Messages URL under a path prefix.
        (
            "https://my-res.services.ai.azure.com/anthropic/v1/messages",
            "https://my-res.services.ai.azure.com/anthropic/v1/messages",
        ),
        ("https://gw.example/anthropic", "https://gw.example/anthropic/v1/messages"),
        ("http://127.0.0.1:18001", "http://127.0.0.1:18001/v1/messages"),
    ],
)
def test_messages_url(base_url: str, expected: str) -> None:
    assert messages_url(base_url) == expected


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages/count_tokens"),
        ("https://api.anthropic.com/v1/", "https://api.anthropic.com/v1/messages/count_tokens"),
        (
            "https://my-res.services.ai.azure.com/anthropic/v1/messages",
            "https://my-res.services.ai.azure.com/anthropic/v1/messages/count_tokens",
        ),
    ],
)
def test_count_tokens_url(base_url: str, expected: str) -> None:
    assert count_tokens_url(base_url) == expected


def test_default_version_is_the_one_anthropic_documents() -> None:
    assert DEFAULT_VERSION == "2023-06-01"
