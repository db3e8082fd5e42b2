"""Registry of backend adapters by provider kind, imported lazily (only the kinds in use are loaded)."""

from __future__ import annotations

import importlib
from functools import cache

from providers.adapters.base import Adapter

ADAPTERS: dict[str, str] = {
    "anthropic": "providers.adapters.anthropic.adapter:AnthropicAdapter",
    "openai_chat": "providers.adapters.openai_chat.adapter:OpenAIChatAdapter",
    "azure_openai": "providers.adapters.azure_openai.adapter:AzureOpenAIAdapter",
    "openai_responses": "providers.adapters.openai_responses.adapter:OpenAIResponsesAdapter",
    "ollama": "providers.adapters.ollama.adapter:OllamaAdapter",
}


@cache
def adapter_for(kind: str) -> Adapter:
    try:
        target = ADAPTERS[kind]
    except KeyError:
        raise LookupError(f"no adapter for provider kind {kind!r}") from None
    module_name, _, class_name = target.partition(":")
    adapter: Adapter = getattr(importlib.import_module(module_name), class_name)()
    return adapter
