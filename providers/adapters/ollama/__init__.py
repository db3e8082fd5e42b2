"""Ollama's native API: ``POST /api/chat`` with NDJSON streaming, ``/api/show`` and ``/api/tags``
(https://github.com/ollama/ollama/blob/main/docs/api.md)."""
