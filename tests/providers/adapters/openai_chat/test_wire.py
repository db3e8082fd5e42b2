"""Wire facts of OpenAI-chat-completions servers (wire.py): endpoint URLs and finish_reason mapping."""

from __future__ import annotations

import pytest

from providers.adapters.openai_chat.wire import STOP_REASONS, chat_url


@pytest.mark.parametrize(
    ("base", "url"),
    [
        # OpenAI (https://platform.openai.com/docs/api-reference/chat/create)
        ("https://api.openai.com", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/chat/completions"),
        # OpenRouter (https://openrouter.ai/docs/api-reference/overview)
        ("https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1/chat/completions"),
        ("https://openrouter.ai/api", "https://openrouter.ai/api/chat/completions"),
        ("https://openrouter.ai/api/v1/chat/completions", "https://openrouter.ai/api/v1/chat/completions"),
        # DeepSeek (https://api-docs.deepseek.com: base_url https://api.deepseek.com or .../v1)
        ("https://api.deepseek.com", "https://api.deepseek.com/v1/chat/completions"),
        # vLLM / llama.cpp / LM Studio on a laptop
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/chat/completions"),
        ("http://localhost:1234", "http://localhost:1234/v1/chat/completions"),
        # Gemini's OpenAI endpoint ends in a version-less /openai segment
        (
            "https://generativelanguage.googleapis.com/v1beta/openai",
            "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
        ),
        ("https://api.example.com/v2", "https://api.example.com/v2/chat/completions"),
        ("https://api.example.com/vnext", "https://api.example.com/vnext/v1/chat/completions"),
        # Databricks serving endpoint (https://docs.databricks.com/aws/en/machine-learning/foundation-model-apis/api-reference)
        (
            "https://adb-1234.5.azuredatabricks.net/serving-endpoints/databricks-claude-sonnet-4-5/invocations",
            "https://adb-1234.5.azuredatabricks.net/serving-endpoints/databricks-claude-sonnet-4-5/invocations",
        ),
        ("https://gw.example.com/proxy/chat/completions?x=1", "https://gw.example.com/proxy/chat/completions?x=1"),
    ],
)
def test_chat_url(base: str, url: str) -> None:
    assert chat_url(base) == url


def test_stop_reasons_cover_every_documented_finish_reason() -> None:
    # https://platform.openai.com/docs/api-reference/chat/object (choices[].finish_reason)
    assert STOP_REASONS == {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "function_call": "tool_use",
        "content_filter": "refusal",
    }
