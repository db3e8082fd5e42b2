"""Is the provider there, and does it take the key? One GET to a cheap listing endpoint, with a short timeout.

``probe_request`` is pure (which URL and headers per kind); ``probe_run`` is the only I/O: one request to the URL
the user gave (or Lynkr's default for that kind), never anywhere else, without proxies from the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lynkr_site.setup_providers import ProviderChoice
from providers.adapters.anthropic.wire import DEFAULT_VERSION, messages_url
from providers.adapters.azure_openai.wire import DEFAULT_API_VERSION
from providers.adapters.ollama.wire import tags_url
from providers.adapters.openai_chat.wire import chat_url

logger = logging.getLogger(__name__)

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
_SHOWN_MODELS = 8


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    url: str
    headers: Mapping[str, str] = field(repr=False)  # carries the credential: never in a repr or a log


@dataclass(frozen=True, slots=True)
class ProbeResult:
    url: str
    reachable: bool  # an HTTP answer came back
    status: int | None
    detail: str  # one line for the terminal
    models: tuple[str, ...] = ()
    listed: bool = False  # the body had a model listing (possibly empty)

    @property
    def ok(self) -> bool:
        """Reachable and the credential was not refused."""
        return self.reachable and self.status not in (401, 403)


def _root(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def probe_request(choice: ProviderChoice) -> ProbeRequest:
    """The listing endpoint of the chosen provider, with its credential as that provider expects it."""
    url = choice.effective_url()
    key = choice.api_key
    match choice.kind.name:
        case "ollama":
            return ProbeRequest(tags_url(url), {})
        case "azure-anthropic":
            # GET /v1/models (https://docs.anthropic.com/en/api/models-list) beside the Messages URL.
            models = messages_url(url).removesuffix("/messages") + "/models"
            return ProbeRequest(models, {"x-api-key": key, "anthropic-version": DEFAULT_VERSION})
        case "databricks":
            # GET /api/2.0/serving-endpoints lists the workspace's endpoints (Databricks REST API, Bearer PAT).
            return ProbeRequest(_root(url) + "/api/2.0/serving-endpoints", {"authorization": f"Bearer {key}"})
        case "azure-openai":
            # GET /openai/models?api-version=... (Azure OpenAI data plane); Foundry hosts take a Bearer token.
            bearer = (urlsplit(url).hostname or "").endswith("services.ai.azure.com")
            headers = {"authorization": f"Bearer {key}"} if bearer else {"api-key": key}
            return ProbeRequest(f"{_root(url)}/openai/models?api-version={DEFAULT_API_VERSION}", headers)
        case _:
            # OpenAI-compatible: GET {base}/models (https://platform.openai.com/docs/api-reference/models/list).
            chat = chat_url(url)
            models = chat.removesuffix("/chat/completions") + "/models" if chat.endswith("/chat/completions") else chat
            return ProbeRequest(models, {"authorization": f"Bearer {key}"} if key else {})


def _model_names(body: Any) -> tuple[str, ...] | None:
    """Model names from the listing shapes: OpenAI/Anthropic ``data[].id``, Ollama ``models[].name``,
    Databricks ``endpoints[].name``; None when the body is no listing."""
    if not isinstance(body, dict):
        return None
    for key, name_field in (("data", "id"), ("models", "name"), ("endpoints", "name")):
        items = body.get(key)
        if isinstance(items, list):
            return tuple(str(item[name_field]) for item in items if isinstance(item, dict) and item.get(name_field))
    return None


def probe_run(request: ProbeRequest, *, timeout: float) -> ProbeResult:
    # Imported here: every `lynkr` command builds its parser from this module's importers, `lynkr serve` included,
    # and httpx brings rich and pygments (~3 MB) into the gateway process.
    import httpx

    try:
        # trust_env=False: no proxy or netrc from the environment; the request goes to this URL only.
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            response = client.get(request.url, headers=dict(request.headers))
    except httpx.HTTPError as exc:
        return ProbeResult(request.url, False, None, f"not reachable: {type(exc).__name__}: {exc}")
    status = response.status_code
    if status in (401, 403):
        return ProbeResult(request.url, True, status, f"answered HTTP {status}: the API key was refused")
    models: tuple[str, ...] | None = None
    if status == 200:
        try:
            models = _model_names(response.json())
        except ValueError:
            models = None
    detail = f"answered HTTP {status}"
    if models:
        shown = ", ".join(models[:_SHOWN_MODELS]) + (", ..." if len(models) > _SHOWN_MODELS else "")
        detail += f"; {len(models)} model(s): {shown}"
    return ProbeResult(request.url, True, status, detail, models or (), listed=models is not None)


def ollama_detect(url: str, *, timeout: float) -> ProbeResult | None:
    """Ollama's model list at ``url`` (``GET /api/tags``), or None when nothing Ollama-like answers there."""
    result = probe_run(ProbeRequest(tags_url(url), {}), timeout=timeout)
    if result.status != 200 or not result.listed:
        logger.debug("no Ollama at %s: %s", url, result.detail)
        return None
    return result
