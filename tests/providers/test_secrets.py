"""Provider credentials are encrypted at rest and can come from a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from providers.models import Provider
from providers.secrets import PREFIX, secret_decrypt, secret_encrypt
from providers.selectors import provider_credential, routing_snapshot_build

pytestmark = pytest.mark.django_db


def test_credential_is_encrypted_in_the_database() -> None:
    provider = Provider.objects.create(name="p", base_url="https://x", api_key="sk-very-secret-value")
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM providers_provider WHERE id = %s", [provider.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith(PREFIX) and "sk-very-secret-value" not in stored
    assert Provider.objects.get(pk=provider.pk).api_key == "sk-very-secret-value"
    [config] = routing_snapshot_build().providers
    assert config.credential == "sk-very-secret-value"


def test_legacy_plaintext_still_reads_and_tampering_is_refused() -> None:
    assert secret_decrypt("plain-old") == "plain-old"
    token = secret_encrypt("abc")
    assert token != secret_encrypt("abc")  # random IV: equal secrets do not look equal
    assert secret_decrypt(token) == "abc"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        secret_decrypt(token[:-4] + "AAAA")
    assert secret_encrypt("") == ""


def test_old_key_still_decrypts_after_rotation(settings: object) -> None:
    from providers import secrets

    token = secret_encrypt("rotate-me")
    old = settings.LYNKR_ENCRYPTION_KEY or settings.SECRET_KEY  # type: ignore[attr-defined]
    settings.LYNKR_ENCRYPTION_KEY = "n" * 40  # type: ignore[attr-defined]
    settings.LYNKR_ENCRYPTION_KEY_OLD = old  # type: ignore[attr-defined]
    secrets._cipher.cache_clear()
    try:
        assert secret_decrypt(token) == "rotate-me"
        assert secret_decrypt(secret_encrypt("new")) == "new"
    finally:
        secrets._cipher.cache_clear()


def test_credential_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("sk-from-file\n")
    provider = Provider(name="f", base_url="https://x", api_key_env=f"file:{path}")
    assert provider_credential(provider) == "sk-from-file"
    provider.api_key_env = f"file:{tmp_path / 'missing'}"
    assert provider_credential(provider) == ""
