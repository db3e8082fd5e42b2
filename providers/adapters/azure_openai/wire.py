"""Azure OpenAI URLs (https://learn.microsoft.com/azure/ai-services/openai/reference).

- Deployment: ``{resource}/openai/deployments/{deployment}/chat/completions?api-version=...``, key in ``api-key``.
- Azure AI Foundry models: ``{resource}/models/chat/completions?api-version=...`` (the model named in the body).
- A full URL (Lynkr's AZURE_OPENAI_ENDPOINT may be one) is used as given, with ``api-version`` added if missing.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_API_VERSION = "2024-10-21"
# The Azure AI Model Inference API (Foundry /models) has its own versions.
FOUNDRY_API_VERSION = "2024-05-01-preview"


def _with_version(url: str, api_version: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("api-version", api_version)
    return urlunsplit(parts._replace(query=urlencode(query)))


def azure_chat_url(base_url: str, *, deployment: str, api_version: str) -> str:
    base = base_url.rstrip("/")
    path = urlsplit(base).path
    if path.endswith("/models/chat/completions"):
        return _with_version(base, api_version or FOUNDRY_API_VERSION)
    if path.endswith("/chat/completions"):
        return _with_version(base, api_version or DEFAULT_API_VERSION)
    if path.endswith("/models"):
        return _with_version(base + "/chat/completions", api_version or FOUNDRY_API_VERSION)
    if not deployment:
        raise ValueError("an Azure OpenAI resource URL needs a deployment (option 'deployment' or the model)")
    parts = urlsplit(base)
    root = urlunsplit(parts._replace(path=parts.path.split("/openai", 1)[0], query=""))
    return _with_version(f"{root}/openai/deployments/{deployment}/chat/completions", api_version or DEFAULT_API_VERSION)
