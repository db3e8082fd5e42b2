"""Provider credentials at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`).

The key is derived from ``LYNKR_ENCRYPTION_KEY`` (or ``SECRET_KEY`` when unset) with HKDF, so a database dump
alone does not reveal upstream keys. Stored values look like ``enc1:<token>``; a value without the prefix is a
legacy plaintext and is still read (and encrypted on the next save). Rotating the key: set the new key in
``LYNKR_ENCRYPTION_KEY`` and the old one in ``LYNKR_ENCRYPTION_KEY_OLD``; values are re-encrypted when saved.
"""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

PREFIX = "enc1:"


def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"lynkr-provider-credentials", info=b"v1").derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


@cache
def _cipher() -> MultiFernet:
    current = settings.LYNKR_ENCRYPTION_KEY or settings.SECRET_KEY
    keys = [_fernet(current)]
    if settings.LYNKR_ENCRYPTION_KEY_OLD:
        keys.append(_fernet(settings.LYNKR_ENCRYPTION_KEY_OLD))
    return MultiFernet(keys)


def secret_encrypt(value: str) -> str:
    if not value:
        return ""
    return PREFIX + _cipher().encrypt(value.encode()).decode("ascii")


def secret_decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored
    try:
        return _cipher().decrypt(stored[len(PREFIX) :].encode("ascii")).decode()
    except InvalidToken as exc:
        raise ValueError(
            "a provider credential cannot be decrypted: LYNKR_ENCRYPTION_KEY/SECRET_KEY changed without "
            "LYNKR_ENCRYPTION_KEY_OLD; re-enter the credential in admin"
        ) from exc


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """A text field stored encrypted; Python code sees the plaintext."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return value
        return secret_decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return secret_encrypt(str(value))
