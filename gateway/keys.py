"""API key format (pure): ``sk-lynkr-<8 public chars>_<40 secret chars>``.

The public prefix identifies a key in lists and logs; the database stores only the SHA-256 of the whole key.
A fast hash is enough here (unlike for passwords) because the secret is 238 random bits, not a guessable word.
"""

from __future__ import annotations

import hashlib
import secrets
import string

KEY_PREFIX = "sk-lynkr-"
_ALPHABET = string.ascii_letters + string.digits
_PUBLIC_ALPHABET = string.ascii_lowercase + string.digits


def key_generate() -> tuple[str, str]:
    """A new key and its public prefix."""
    public = "".join(secrets.choice(_PUBLIC_ALPHABET) for _ in range(8))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(40))
    prefix = KEY_PREFIX + public
    return f"{prefix}_{secret}", prefix


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix_normalize(value: str) -> str:
    """Accept ``sk-lynkr-abcd1234``, ``abcd1234`` or a whole key; return the stored prefix form."""
    value = value.strip()
    if value.startswith(KEY_PREFIX):
        value = value[len(KEY_PREFIX) :]
    return KEY_PREFIX + value.split("_", 1)[0]


def claude_code_exports(*, base_url: str, secret: str) -> list[str]:
    """The environment Claude Code needs to use the gateway with this key: printed by ``lynkr serve`` at first
    start and by ``lynkr setup``, and shown when a key is issued in admin."""
    return [
        f"export ANTHROPIC_BASE_URL={base_url}",
        f"export ANTHROPIC_API_KEY={secret}",
        "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
    ]
