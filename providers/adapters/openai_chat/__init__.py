"""OpenAI chat completions upstreams: OpenAI, OpenRouter, Databricks serving endpoints, vLLM, LM Studio,
llama.cpp server, DeepSeek (https://platform.openai.com/docs/api-reference/chat)."""
