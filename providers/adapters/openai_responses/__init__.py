"""OpenAI Responses API upstreams: OpenAI and Azure OpenAI (https://platform.openai.com/docs/api-reference/responses)."""
