"""API key format, hashing and prefix normalisation: ``sk-lynkr-<8 public chars>_<40 secret chars>``."""

from __future__ import annotations

import hashlib
import re

import pytest

from gateway.keys import KEY_PREFIX, key_generate, key_hash, key_prefix_normalize

KEY_RE = re.compile(r"sk-lynkr-[a-z0-9]{8}_[A-Za-z0-9]{40}")


def test_generated_key_format() -> None:
    key, prefix = key_generate()
    assert KEY_RE.fullmatch(key), key
    assert key.startswith(prefix + "_")
    assert re.fullmatch(r"sk-lynkr-[a-z0-9]{8}", prefix)
    assert len(key) == len("sk-lynkr-") + 8 + 1 + 40


def test_generated_keys_differ() -> None:
    keys = [key_generate() for _ in range(50)]
    assert len({key for key, _ in keys}) == 50
    assert len({prefix for _, prefix in keys}) > 1


def test_the_prefix_of_a_generated_key_normalises_to_itself() -> None:
    key, prefix = key_generate()
    assert key_prefix_normalize(key) == prefix
    assert key_prefix_normalize(prefix) == prefix
    assert key_prefix_normalize(prefix[len(KEY_PREFIX) :]) == prefix


def test_key_hash_is_the_sha256_hex_of_the_whole_key() -> None:
    assert key_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    key = "sk-lynkr-abcd1234_" + "A" * 40
    assert key_hash(key) == hashlib.sha256(key.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", key_hash(key))


def test_key_hash_distinguishes_keys_that_share_a_prefix() -> None:
    assert key_hash("sk-lynkr-abcd1234_" + "A" * 40) != key_hash("sk-lynkr-abcd1234_" + "B" * 40)


def test_key_hash_of_non_ascii_is_utf8() -> None:
    assert key_hash("ü") == hashlib.sha256("ü".encode()).hexdigest()


@pytest.mark.parametrize(
    ("value", "prefix"),
    [
        ("sk-lynkr-abcd1234", "sk-lynkr-abcd1234"),
        ("abcd1234", "sk-lynkr-abcd1234"),
        ("sk-lynkr-abcd1234_" + "S" * 40, "sk-lynkr-abcd1234"),
        ("abcd1234_" + "S" * 40, "sk-lynkr-abcd1234"),
        ("  sk-lynkr-abcd1234\n", "sk-lynkr-abcd1234"),
        ("\tabcd1234 ", "sk-lynkr-abcd1234"),
        ("sk-lynkr-abcd1234_secret_with_underscores", "sk-lynkr-abcd1234"),
        ("", "sk-lynkr-"),
    ],
)
def test_key_prefix_normalize(value: str, prefix: str) -> None:
    assert key_prefix_normalize(value) == prefix
