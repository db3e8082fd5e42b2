"""What /api/show and /api/tags answers mean, and the provider a model's capabilities make (pure).

Answers from https://github.com/ollama/ollama/blob/main/docs/api.md "Show Model Information" / "List Local Models"
and docs/capabilities/thinking.mdx (the ``thinking`` object).
"""

from __future__ import annotations

from typing import Any

import pytest

from providers.adapters.ollama.wire import (
    DETECTED_CONTEXT_CAP,
    UNKNOWN,
    ModelInfo,
    model_info_parse,
    model_names_parse,
    provider_with_model_info,
    show_url,
    tags_url,
)
from tests.providers.adapters.ollama.support import provider

# docs/api.md "Show Model Information" response (modelfile/template/parameters elided).
SHOW_LLAVA: dict[str, Any] = {
    "details": {"format": "gguf", "family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_0"},
    "model_info": {
        "general.architecture": "llama",
        "general.parameter_count": 8030261248,
        "llama.attention.head_count": 32,
        "llama.context_length": 8192,
        "llama.embedding_length": 4096,
        "tokenizer.ggml.model": "gpt2",
    },
    "capabilities": ["completion", "vision"],
}
# docs/api.md "List Local Models" response (details elided).
TAGS = {
    "models": [
        {"name": "deepseek-r1:latest", "model": "deepseek-r1:latest", "size": 4683075271},
        {"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 2019393189},
    ]
}


def test_urls() -> None:
    assert show_url("http://localhost:11434") == "http://localhost:11434/api/show"
    assert tags_url("http://ollama:11434/api/chat") == "http://ollama:11434/api/tags"
    assert show_url("http://ollama:11434/api/") == "http://ollama:11434/api/show"


def test_model_info_of_the_documented_answer() -> None:
    assert model_info_parse(SHOW_LLAVA) == ModelInfo(context_length=8192, vision=True, known=True)


def test_model_info_with_tools_thinking_and_levels() -> None:
    data = {
        "model_info": {"general.architecture": "gptoss", "gptoss.context_length": 131072},
        "capabilities": ["completion", "tools", "thinking"],
        "thinking": {"values": ["low", "medium", "high"], "default": "medium"},
    }
    assert model_info_parse(data) == ModelInfo(
        131072, tools=True, thinking=True, think_levels=("low", "medium", "high"), known=True
    )
    on_off = {**data, "thinking": {"values": [True, False], "default": True}}
    assert model_info_parse(on_off).think_levels == ()


@pytest.mark.parametrize(
    ("model_info", "length"),
    [
        ({"general.architecture": "qwen3", "qwen3.context_length": 40960}, 40960),
        ({"general.architecture": "odd", "qwen3moe.context_length": 262144}, 262144),  # arch key missing: any one
        ({"llama.context_length": 0}, None),
        ({"llama.context_length": "8192"}, None),
        ({"llama.context_length": True}, None),
        ({}, None),
        ("not an object", None),
    ],
)
def test_context_length(model_info: Any, length: int | None) -> None:
    assert model_info_parse({"model_info": model_info, "capabilities": []}).context_length == length


def test_older_servers_without_capabilities_are_unknown() -> None:
    info = model_info_parse({"model_info": SHOW_LLAVA["model_info"], "thinking": "odd"})
    assert info == ModelInfo(context_length=8192, known=False)
    assert model_info_parse(["not", "an", "object"]) is UNKNOWN


def test_model_names() -> None:
    assert model_names_parse(TAGS) == ["deepseek-r1:latest", "llama3.2:latest"]
    assert model_names_parse({"models": [{"model": "only-model:1"}, {"size": 1}, "x"]}) == ["only-model:1"]
    assert model_names_parse({"models": None}) == []
    assert model_names_parse(None) == []


def test_provider_with_model_info() -> None:
    base = provider()
    assert provider_with_model_info(base, UNKNOWN) is base
    info = ModelInfo(context_length=40960, tools=True, vision=False, thinking=True, known=True)
    applied = provider_with_model_info(base, info)
    assert (applied.context_window, applied.supports_tools, applied.supports_images, applied.supports_thinking) == (
        40960,
        True,
        False,
        True,
    )
    # Detection narrows what the admin allowed but never widens it; a configured context window wins.
    admin = provider(supports_tools=False, context_window=16384)
    narrowed = provider_with_model_info(admin, info)
    assert (narrowed.supports_tools, narrowed.context_window) == (False, 16384)
    # Unknown capabilities keep the configured ones; the length alone still applies, capped.
    unknown_caps = provider_with_model_info(base, ModelInfo(context_length=262144))
    assert (unknown_caps.supports_images, unknown_caps.context_window) == (True, DETECTED_CONTEXT_CAP)


def test_named_think_levels_turn_the_option_on_unless_configured() -> None:
    info = ModelInfo(thinking=True, think_levels=("low", "medium", "high"), known=True)
    applied = provider_with_model_info(provider(options={"num_ctx": 8192}), info)
    assert dict(applied.options) == {"num_ctx": 8192, "think_levels": True}
    assert provider_with_model_info(provider(options={"think_levels": False}), info).options["think_levels"] is False
