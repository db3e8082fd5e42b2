"""Thinking-block signatures minted by Lynkr (pure).

Anthropic clients echo thinking blocks back with their ``signature`` (claude-code-wire.md §3), and some backends
need something from their earlier reasoning to continue (OpenAI Responses' encrypted reasoning items). We mint
``lynkr1.<base64url JSON payload>.<HMAC>``: the payload carries what the backend needs, the HMAC (keyed by the
deployment's secret) lets us recognise our own signatures and refuse forged payloads. A signature from anyone
else (Anthropic's own) reads as ``None``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

PREFIX = "lynkr1."


def _mac(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode("ascii"), hashlib.sha256).hexdigest()[:24]


def signature_mint(payload: dict[str, Any], secret: bytes) -> str:
    body = base64.urlsafe_b64encode(orjson.dumps(payload)).decode("ascii").rstrip("=")
    return f"{PREFIX}{body}.{_mac(secret, body)}"


def signature_read(signature: str | None, secret: bytes) -> dict[str, Any] | None:
    """The payload of a signature we minted, or None (foreign, malformed or tampered)."""
    if not signature or not signature.startswith(PREFIX):
        return None
    body, _, mac = signature[len(PREFIX) :].rpartition(".")
    if not body or not hmac.compare_digest(mac, _mac(secret, body)):
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None
