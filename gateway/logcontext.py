"""Request context on every log line, and the JSON log format.

The middleware and the pipeline set context variables (request id, the caller's X-Request-ID, key prefix, route,
provider, attempt); ``RequestContextFilter`` copies them onto every record logged within the request, from any
module. ``JsonFormatter`` writes one JSON object per line (production); the text format appends the same fields.
Secrets never reach a record from here: only the key's public prefix is kept.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

FIELDS = ("request_id", "client_request_id", "key", "route", "provider", "attempt")
_context: ContextVar[dict[str, str] | None] = ContextVar("lynkr_log_context", default=None)


def log_context_set(**values: object) -> None:
    """Add fields to this request's log context (a copy: concurrent requests never share one)."""
    current = dict(_context.get() or {})
    current.update({k: str(v) for k, v in values.items() if v not in (None, "")})
    _context.set(current)


def log_context_clear() -> None:
    _context.set(None)


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get() or {}
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name, ""))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, "")
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{n}={getattr(record, n)}" for n in FIELDS if getattr(record, n, ""))
        return f"{line} [{extra}]" if extra else line
