"""Wire facts of Ollama's native API (pure): endpoint URLs, stop reasons, and what ``/api/show`` tells about a model.

Docs: https://github.com/ollama/ollama/blob/main/docs/api.md ("Generate a chat completion", "Show Model
Information", "List Local Models") and docs/capabilities/thinking.mdx (the ``thinking`` object of ``/api/show``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from providers.routing import ProviderConfig

# done_reason -> Anthropic stop_reason. "stop" also ends a turn that made tool calls (the caller turns that into
# "tool_use"); "load"/"unload" answer a request with no messages (docs/api.md "Load a model") and carry no output.
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "load": "end_turn", "unload": "end_turn"}


def api_base(base_url: str) -> str:
    """``http://host:11434`` (Lynkr's OLLAMA_ENDPOINT) -> ``http://host:11434/api``. A URL that already ends in
    ``/api`` or ``/api/chat`` (a full endpoint pasted into the config) keeps its path."""
    base = base_url.rstrip("/")
    if base.endswith("/api/chat"):
        return base[: -len("/chat")]
    if base.endswith("/api"):
        return base
    return base + "/api"


def chat_url(base_url: str) -> str:
    return api_base(base_url) + "/chat"


def show_url(base_url: str) -> str:
    return api_base(base_url) + "/show"


def tags_url(base_url: str) -> str:
    return api_base(base_url) + "/tags"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What ``POST /api/show`` says about a model.

    ``known`` is False when the server could not be asked or is too old to list ``capabilities``; the booleans are
    then meaningless and the provider's configured capabilities stand (``provider_with_model_info``).
    """

    context_length: int | None = None
    tools: bool = False
    vision: bool = False
    thinking: bool = False
    think_levels: tuple[str, ...] = ()  # named levels ("low", "medium", "high") when the model takes them
    known: bool = False


UNKNOWN = ModelInfo()

# Claude Code's first turn alone is ~20k tokens and grows each turn (claude-code-wire.md §7), Ollama's default
# context is a few thousand; 64k holds a working session without reserving a 256k-token KV cache.
DETECTED_CONTEXT_CAP = 65536


def model_info_parse(data: Any) -> ModelInfo:
    """An ``/api/show`` answer -> ModelInfo. ``model_info["<general.architecture>.context_length"]`` is the trained
    context; ``capabilities`` lists "completion", "tools", "vision", "thinking" ... (Ollama >= 0.6.4)."""
    if not isinstance(data, dict):
        return UNKNOWN
    model_info = data.get("model_info")
    context_length: int | None = None
    if isinstance(model_info, dict):
        arch = model_info.get("general.architecture")
        value = model_info.get(f"{arch}.context_length")
        if not isinstance(value, int):
            value = next((v for k, v in model_info.items() if k.endswith(".context_length")), None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            context_length = value
    thinking_meta = data.get("thinking")
    values = thinking_meta.get("values") if isinstance(thinking_meta, dict) else None
    levels = tuple(v for v in values if isinstance(v, str)) if isinstance(values, list) else ()
    capabilities = data.get("capabilities")
    if not isinstance(capabilities, list):
        return ModelInfo(context_length=context_length, think_levels=levels)
    return ModelInfo(
        context_length=context_length,
        tools="tools" in capabilities,
        vision="vision" in capabilities,
        thinking="thinking" in capabilities,
        think_levels=levels,
        known=True,
    )


def model_names_parse(data: Any) -> list[str]:
    """``GET /api/tags`` -> the local model names (``models[].name``, e.g. ``llama3.2:latest``)."""
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        return []
    return [
        str(m.get("name") or m.get("model"))
        for m in models
        if isinstance(m, dict) and (m.get("name") or m.get("model"))
    ]


def provider_with_model_info(provider: ProviderConfig, info: ModelInfo) -> ProviderConfig:
    """The provider as this model can serve it.

    Detected limits only narrow what the admin allowed (tools, images); thinking is turned on when the model has it.
    A configured ``context_window`` wins over the trained length. The context window becomes ``num_ctx``, the size
    of the KV cache Ollama allocates, and trained lengths reach 256k tokens: more memory than most servers have, so
    a detected length is capped at ``DETECTED_CONTEXT_CAP`` (configure ``context_window`` to go beyond it).
    """
    changes: dict[str, Any] = {}
    if provider.context_window is None and info.context_length is not None:
        changes["context_window"] = min(info.context_length, DETECTED_CONTEXT_CAP)
    if info.known:
        changes["supports_tools"] = provider.supports_tools and info.tools
        changes["supports_images"] = provider.supports_images and info.vision
        changes["supports_thinking"] = provider.supports_thinking or info.thinking
    if info.think_levels and "think_levels" not in provider.options:
        changes["options"] = MappingProxyType({**provider.options, "think_levels": True})
    return dataclasses.replace(provider, **changes) if changes else provider
