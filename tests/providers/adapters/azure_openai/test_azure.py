"""Azure OpenAI: deployment and Foundry ``/models`` URLs (wire.py) and the adapter around the OpenAI chat body.

URL forms: https://learn.microsoft.com/azure/ai-services/openai/reference (``{endpoint}/openai/deployments/
{deployment-id}/chat/completions?api-version=...``, key in the ``api-key`` header) and
https://learn.microsoft.com/azure/ai-foundry/model-inference/concepts/endpoints (``https://<resource>.services.ai.
azure.com/models/chat/completions?api-version=...``, the deployment named by ``model`` in the body).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from providers.adapters.azure_openai.adapter import AzureOpenAIAdapter
from providers.adapters.azure_openai.wire import DEFAULT_API_VERSION, azure_chat_url
from tests.providers.adapters.openai_chat.helpers import (
    INBOUND,
    PROVIDER_KEY,
    body,
    decode,
    fixture,
    fold,
    provider,
    route,
)


def azure(base_url: str, **options: Any) -> Any:
    return provider(name="azure", kind="azure_openai", base_url=base_url, auth_style="api-key", options=options)


def url_for(base_url: str, upstream_model: str = "gpt-4o", **options: Any) -> str:
    url = AzureOpenAIAdapter().url(route(azure(base_url, **options), upstream_model))
    assert url is not None
    return url


@pytest.mark.parametrize(
    ("base", "options", "url"),
    [
        (
            "https://contoso.openai.azure.com",
            {},
            "https://contoso.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        ),
        (
            "https://contoso.openai.azure.com/",
            {"deployment": "prod-4o"},
            "https://contoso.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
        ),
        (
            "https://contoso.openai.azure.com/openai",
            {},
            "https://contoso.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        ),
        (
            "https://contoso.openai.azure.com/openai/deployments/old",
            {"deployment": "new"},
            "https://contoso.openai.azure.com/openai/deployments/new/chat/completions?api-version=2024-10-21",
        ),
        (
            "https://contoso.cognitiveservices.azure.com",
            {"api_version": "2025-01-01-preview"},
            "https://contoso.cognitiveservices.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2025-01-01-preview",
        ),
        (
            "https://contoso.services.ai.azure.com/models",
            {"api_version": "2024-05-01-preview"},
            "https://contoso.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview",
        ),
        (
            "https://contoso.openai.azure.com/openai/deployments/d1/chat/completions?api-version=2024-06-01",
            {},
            "https://contoso.openai.azure.com/openai/deployments/d1/chat/completions?api-version=2024-06-01",
        ),
        (
            "https://contoso.openai.azure.com/openai/deployments/d1/chat/completions",
            {"api_version": "2024-08-01-preview"},
            "https://contoso.openai.azure.com/openai/deployments/d1/chat/completions?api-version=2024-08-01-preview",
        ),
        (
            "https://contoso.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview",
            {},
            "https://contoso.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview",
        ),
        (
            "https://apim.contoso.com/ai/chat/completions?tenant=a&api-version=2024-10-21",
            {},
            "https://apim.contoso.com/ai/chat/completions?tenant=a&api-version=2024-10-21",
        ),
    ],
)
def test_urls(base: str, options: dict[str, str], url: str) -> None:
    assert url_for(base, **options) == url


def test_api_version_is_added_to_a_full_url_and_other_parameters_kept() -> None:
    url = url_for("https://apim.contoso.com/ai/chat/completions?tenant=a")
    assert parse_qs(urlsplit(url).query) == {"tenant": ["a"], "api-version": [DEFAULT_API_VERSION]}


def test_deployment_option_wins_over_the_model() -> None:
    assert "/deployments/from-option/" in url_for(
        "https://contoso.openai.azure.com", "gpt-4o", deployment="from-option"
    )
    assert "/deployments/gpt-4o-mini/" in url_for("https://contoso.openai.azure.com", "gpt-4o-mini")


def test_a_resource_url_needs_a_deployment() -> None:
    with pytest.raises(ValueError, match="needs a deployment"):
        azure_chat_url("https://contoso.openai.azure.com", deployment="", api_version="2024-10-21")
    # A full URL or a Foundry /models base names the deployment elsewhere.
    assert azure_chat_url("https://contoso.services.ai.azure.com/models", deployment="", api_version="v")
    assert azure_chat_url("https://x/chat/completions", deployment="", api_version="v")


def test_request_has_the_azure_url_api_key_and_the_openai_body() -> None:
    request = AzureOpenAIAdapter().build_request(
        route(azure("https://contoso.openai.azure.com"), "gpt-4o"), body(), INBOUND
    )
    assert (
        request.url
        == "https://contoso.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    )
    headers = dict(request.headers)
    assert headers["api-key"] == PROVIDER_KEY
    assert "authorization" not in headers
    sent = orjson.loads(request.body)
    assert sent["model"] == "gpt-4o"  # Foundry routes on it; deployments ignore it
    assert sent["messages"] == [{"role": "user", "content": "Hello"}]


def test_foundry_request_with_bearer_auth() -> None:
    config = provider(kind="azure_openai", base_url="https://contoso.services.ai.azure.com/models", auth_style="bearer")
    request = AzureOpenAIAdapter().build_request(route(config, "DeepSeek-R1"), body(), INBOUND)
    assert request.url.startswith("https://contoso.services.ai.azure.com/models/chat/completions?api-version=")
    assert dict(request.headers)["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert orjson.loads(request.body)["model"] == "DeepSeek-R1"


@pytest.mark.parametrize("name", ["azure_content_filter.sse", "azure_completion.json", "foundry_reasoning.json"])
def test_azure_answers_decode_with_the_azure_adapter(name: str) -> None:
    content_type = "application/json" if name.endswith(".json") else "text/event-stream"
    folded = fold(decode([fixture(name)], content_type=content_type, adapter=AzureOpenAIAdapter()))
    assert folded["content"] and folded["stop_reason"] in ("end_turn", "refusal")


def test_resource_names_starting_with_openai() -> None:
    assert url_for("https://openai-prod.openai.azure.com") == (
        "https://openai-prod.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    )


def test_foundry_models_default_api_version_is_a_model_inference_version() -> None:
    query = parse_qs(urlsplit(url_for("https://contoso.services.ai.azure.com/models")).query)
    assert query["api-version"][0] in ("2024-05-01-preview", "2025-04-01", "2025-05-01")
