"""The provider kinds ``lynkr setup`` offers, and the Lynkr variables each one is written as (pure).

The kinds are the ``MODEL_PROVIDER`` values providers/envseed.py seeds; the variable names and defaults are those
of Lynkr's ``.env`` (docs/providers.md, docs/configuration.md "Providers").
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


class SetupError(Exception):
    """A problem ``lynkr setup`` reports in one line and stops on (nothing half-written)."""


@dataclass(frozen=True, slots=True)
class ProviderKind:
    name: str  # the MODEL_PROVIDER value
    label: str
    url_var: str  # the variable --base-url is written to
    url_default: str  # Lynkr's default; "" = the URL is required
    url_example: str
    key_var: str  # "" = no credential
    model_var: str  # the variable --model is written to
    model_default: str  # what Lynkr uses when --model is not given ("" = the provider decides)


KINDS: dict[str, ProviderKind] = {
    kind.name: kind
    for kind in (
        ProviderKind(
            "azure-anthropic", "Anthropic Messages API (Azure AI Foundry, or any Messages endpoint)",
            "AZURE_ANTHROPIC_ENDPOINT", "", "https://<resource>.services.ai.azure.com/anthropic/v1/messages",
            "AZURE_ANTHROPIC_API_KEY", "MODEL_DEFAULT", "",
        ),
        ProviderKind(
            "databricks", "Databricks model serving endpoint",
            "DATABRICKS_API_BASE", "", "https://<workspace>.cloud.databricks.com",
            "DATABRICKS_API_KEY", "DATABRICKS_ENDPOINT_PATH", "databricks-claude-sonnet-4-5",
        ),
        ProviderKind(
            "azure-openai", "Azure OpenAI (deployment, Foundry /models, or Responses URL)",
            "AZURE_OPENAI_ENDPOINT", "", "https://<resource>.openai.azure.com",
            "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT", "",
        ),
        ProviderKind(
            "openrouter", "OpenRouter",
            "OPENROUTER_ENDPOINT", "https://openrouter.ai/api/v1/chat/completions", "https://openrouter.ai/api/v1",
            "OPENROUTER_API_KEY", "OPENROUTER_MODEL", "openai/gpt-4o-mini",
        ),
        ProviderKind(
            "ollama", "Ollama (local models)",
            "OLLAMA_ENDPOINT", "http://localhost:11434", "http://127.0.0.1:11434",
            "", "OLLAMA_MODEL", "qwen2.5-coder:7b",
        ),
        ProviderKind(
            "openai", "OpenAI, or any OpenAI-compatible chat completions server (vLLM, LM Studio, llama.cpp)",
            "OPENAI_ENDPOINT", "https://api.openai.com/v1/chat/completions", "http://127.0.0.1:8000/v1",
            "OPENAI_API_KEY", "OPENAI_MODEL", "gpt-4o",
        ),
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    kind: ProviderKind
    base_url: str  # "" = Lynkr's default
    api_key: str
    model: str  # "" = Lynkr's default

    def effective_url(self) -> str:
        return self.base_url or self.kind.url_default

    def env_values(self) -> list[tuple[str, str]]:
        """The variables written for this provider, MODEL_PROVIDER first."""
        values = [("MODEL_PROVIDER", self.kind.name)]
        if self.base_url:
            values.append((self.kind.url_var, self.base_url))
        if self.kind.key_var:
            values.append((self.kind.key_var, self.api_key))
        if self.model:
            model = self.model
            if self.kind.name == "databricks" and not model.startswith("/"):
                # Lynkr's Databricks provider takes the endpoint path; the endpoint name is the model.
                model = f"/serving-endpoints/{model}/invocations"
            values.append((self.kind.model_var, model))
        return values


def provider_choice(*, kind: str, base_url: str, api_key: str, model: str) -> ProviderChoice:
    """Validate what a provider needs; raise SetupError naming the missing or wrong value (and the flag)."""
    found = KINDS.get(kind.strip().lower())
    if found is None:
        raise SetupError(f"unknown provider {kind!r}: expected one of {', '.join(KINDS)}")
    base_url = base_url.strip()
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SetupError(f"--base-url {base_url!r} is not an http(s) URL")
    elif not found.url_default:
        raise SetupError(
            f"{found.name} needs its URL (--base-url, written as {found.url_var}; e.g. {found.url_example})"
        )
    api_key = api_key.strip()
    if found.key_var and not api_key:
        raise SetupError(f"{found.name} needs an API key (--api-key or --api-key-file, written as {found.key_var})")
    if not found.key_var:
        api_key = ""
    model = model.strip()
    if found.name == "azure-openai" and not model and not _azure_full_url(base_url):
        raise SetupError(
            "azure-openai with a resource URL needs the deployment name (--model, written as AZURE_OPENAI_DEPLOYMENT)"
        )
    return ProviderChoice(kind=found, base_url=base_url, api_key=api_key, model=model)


def _azure_full_url(url: str) -> bool:
    path = urlsplit(url).path.rstrip("/")
    return path.endswith(("/chat/completions", "/models", "/responses"))
