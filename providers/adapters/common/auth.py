"""The provider's credential as request headers (pure). The client's own key is never among them."""

from __future__ import annotations

from providers.routing import ProviderConfig


def auth_headers(provider: ProviderConfig) -> list[tuple[str, str]]:
    if not provider.credential or provider.auth_style == "none":
        return []
    if provider.auth_style == "bearer":
        return [("authorization", f"Bearer {provider.credential}")]
    if provider.auth_style == "api-key":
        return [("api-key", provider.credential)]  # Azure OpenAI
    return [("x-api-key", provider.credential)]


def extra_headers(provider: ProviderConfig) -> list[tuple[str, str]]:
    """``options.extra_headers`` (e.g. OpenRouter's HTTP-Referer and X-Title attribution headers)."""
    extra = provider.options.get("extra_headers") or {}
    if not isinstance(extra, dict):
        return []
    return [(str(k).lower(), str(v)) for k, v in extra.items()]
