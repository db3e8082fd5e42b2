"""Providers described by Lynkr's environment variables (pure; see docs/providers.md for the table).

A Lynkr ``.env`` keeps working: each provider whose variables are present is seeded; ``MODEL_PROVIDER`` names
the primary one (priority 10, and ``MODEL_DEFAULT`` applies to it), the others get priority 50. Credentials are
never copied into the database: a seeded provider names the variable (``api_key_env``) and the key is read from
the environment when the routing snapshot is built.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

# Lynkr's MODEL_PROVIDER values (reference: lynkr-env.md). Those without a seeder are recognised, so a Lynkr
# .env is not rejected, and named in a warning.
LYNKR_PROVIDER_NAMES = frozenset(
    {"databricks", "azure-anthropic", "azure-openai", "openrouter", "ollama", "openai", "bedrock", "vertex",
     "llamacpp", "lmstudio"}
)  # fmt: skip

# Every variable the seeders read (settings.LYNKR_PROVIDER_ENV holds their values).
PROVIDER_ENV_NAMES = (
    "MODEL_PROVIDER", "MODEL_DEFAULT",
    "AZURE_ANTHROPIC_ENDPOINT", "AZURE_ANTHROPIC_API_KEY", "AZURE_ANTHROPIC_VERSION",
    "DATABRICKS_API_BASE", "DATABRICKS_API_KEY", "DATABRICKS_ENDPOINT_PATH",
    "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_API_VERSION",
    "OPENROUTER_API_KEY", "OPENROUTER_MODEL", "OPENROUTER_ENDPOINT",
    "OLLAMA_ENDPOINT", "OLLAMA_MODEL", "OLLAMA_TIMEOUT_MS",
    "OPENAI_API_KEY", "OPENAI_MODEL", "OPENAI_ENDPOINT",
)  # fmt: skip
SECRET_ENV_NAMES = frozenset(
    {"AZURE_ANTHROPIC_API_KEY", "DATABRICKS_API_KEY", "AZURE_OPENAI_API_KEY", "OPENROUTER_API_KEY", "OPENAI_API_KEY"}
)

Spec = dict[str, Any]


def _url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(f"{name}={value!r} is invalid: expected an http(s) URL")
    return value


def _azure_anthropic(v: Mapping[str, str]) -> Spec | None:
    endpoint = v.get("AZURE_ANTHROPIC_ENDPOINT", "")
    if not endpoint:
        return None
    return {
        "name": "azure-anthropic",
        "kind": "anthropic",
        "base_url": _url("AZURE_ANTHROPIC_ENDPOINT", endpoint),
        "api_key_env": "AZURE_ANTHROPIC_API_KEY",
        "auth_style": "x-api-key",
        "api_version": v.get("AZURE_ANTHROPIC_VERSION") or "2023-06-01",
        "supports_thinking": True,
    }


def _databricks(v: Mapping[str, str]) -> Spec | None:
    base = v.get("DATABRICKS_API_BASE", "")
    if not base:
        return None
    path = v.get("DATABRICKS_ENDPOINT_PATH") or "/serving-endpoints/databricks-claude-sonnet-4-5/invocations"
    endpoint = path.rstrip("/").split("/serving-endpoints/", 1)[-1].split("/", 1)[0]
    return {
        "name": "databricks",
        "kind": "openai_chat",
        "base_url": _url("DATABRICKS_API_BASE", base.rstrip("/") + "/" + path.lstrip("/")),
        "api_key_env": "DATABRICKS_API_KEY",
        "auth_style": "bearer",
        "model_override": endpoint,
    }


def _azure_openai(v: Mapping[str, str]) -> Spec | None:
    endpoint = v.get("AZURE_OPENAI_ENDPOINT", "")
    if not endpoint:
        return None
    parts = urlsplit(_url("AZURE_OPENAI_ENDPOINT", endpoint))
    deployment = v.get("AZURE_OPENAI_DEPLOYMENT", "")
    # Lynkr picks the wire format from the URL: .../responses -> Responses API, else chat completions.
    kind = "openai_responses" if parts.path.rstrip("/").endswith("/responses") else "azure_openai"
    options: dict[str, Any] = {}
    if deployment:
        options["deployment"] = deployment
    if v.get("AZURE_OPENAI_API_VERSION"):
        options["api_version"] = v["AZURE_OPENAI_API_VERSION"]
    return {
        "name": "azure-openai",
        "kind": kind,
        "base_url": endpoint,
        "api_key_env": "AZURE_OPENAI_API_KEY",
        # Key in `api-key`, except Azure AI Foundry project endpoints, which take a Bearer token (Lynkr's rule).
        "auth_style": "bearer" if (parts.hostname or "").endswith("services.ai.azure.com") else "api-key",
        "model_override": deployment,
        "options": options,
    }


def _openrouter(v: Mapping[str, str]) -> Spec | None:
    if not v.get("OPENROUTER_API_KEY"):
        return None
    endpoint = v.get("OPENROUTER_ENDPOINT") or "https://openrouter.ai/api/v1/chat/completions"
    return {
        "name": "openrouter",
        "kind": "openai_chat",
        "base_url": _url("OPENROUTER_ENDPOINT", endpoint),
        "api_key_env": "OPENROUTER_API_KEY",
        "auth_style": "bearer",
        "model_override": v.get("OPENROUTER_MODEL") or "openai/gpt-4o-mini",
        # https://openrouter.ai/docs/api-reference/overview#headers: app attribution; top_k is accepted there.
        "options": {"extra_headers": {"HTTP-Referer": "https://lynkr.dev", "X-Title": "Lynkr"}, "top_k": True},
    }


def _ollama(v: Mapping[str, str]) -> Spec | None:
    if not v.get("OLLAMA_ENDPOINT") and not v.get("OLLAMA_MODEL") and v.get("MODEL_PROVIDER") != "ollama":
        return None
    timeout_ms = v.get("OLLAMA_TIMEOUT_MS") or "120000"
    try:
        timeout = int(timeout_ms) / 1000
    except ValueError:
        raise ImproperlyConfigured(f"OLLAMA_TIMEOUT_MS={timeout_ms!r} is invalid: expected milliseconds") from None
    return {
        "name": "ollama",
        "kind": "ollama",
        "base_url": _url("OLLAMA_ENDPOINT", v.get("OLLAMA_ENDPOINT") or "http://localhost:11434"),
        "auth_style": "none",
        "model_override": v.get("OLLAMA_MODEL") or "qwen2.5-coder:7b",
        "read_timeout": timeout,
    }


def _openai(v: Mapping[str, str]) -> Spec | None:
    if not v.get("OPENAI_API_KEY") and v.get("MODEL_PROVIDER") != "openai":
        return None
    endpoint = v.get("OPENAI_ENDPOINT") or "https://api.openai.com/v1/chat/completions"
    return {
        "name": "openai",
        "kind": "openai_chat",
        "base_url": _url("OPENAI_ENDPOINT", endpoint),
        "api_key_env": "OPENAI_API_KEY",
        "auth_style": "bearer",
        "model_override": v.get("OPENAI_MODEL") or "gpt-4o",
        # OpenAI's newer models refuse max_tokens (https://platform.openai.com/docs/api-reference/chat/create).
        "options": {"max_tokens_field": "max_completion_tokens", "prompt_cache_key": True},
    }


SEEDERS = {
    "azure-anthropic": _azure_anthropic,
    "databricks": _databricks,
    "azure-openai": _azure_openai,
    "openrouter": _openrouter,
    "ollama": _ollama,
    "openai": _openai,
}


def provider_env_specs(values: Mapping[str, str]) -> list[Spec]:
    primary = values.get("MODEL_PROVIDER", "").strip().lower()
    if primary and primary not in LYNKR_PROVIDER_NAMES:
        raise ImproperlyConfigured(
            f"MODEL_PROVIDER={primary!r} is invalid: expected one of {', '.join(sorted(LYNKR_PROVIDER_NAMES))}"
        )
    specs: list[Spec] = []
    for name, seeder in SEEDERS.items():
        spec = seeder(values)
        if spec is None:
            if name == primary:
                raise ImproperlyConfigured(f"MODEL_PROVIDER={primary} needs its variables ({_needs(name)})")
            continue
        spec["priority"] = 10 if name == primary else 50
        if name == primary and values.get("MODEL_DEFAULT"):
            spec["model_override"] = values["MODEL_DEFAULT"]
        specs.append(spec)
    if primary and primary not in SEEDERS:
        logger.warning("MODEL_PROVIDER=%s is recognised but not served yet; not seeded", primary)
    return specs


def _needs(name: str) -> str:
    return {
        "azure-anthropic": "AZURE_ANTHROPIC_ENDPOINT",
        "databricks": "DATABRICKS_API_BASE, DATABRICKS_API_KEY",
        "azure-openai": "AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY",
        "openrouter": "OPENROUTER_API_KEY",
        "openai": "OPENAI_API_KEY",
    }.get(name, name)
