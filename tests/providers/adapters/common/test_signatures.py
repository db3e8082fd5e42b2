"""Thinking signatures minted by Lynkr (signatures.py): ``lynkr1.<base64url payload>.<HMAC>``."""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
import pytest

from providers.adapters.common.signatures import PREFIX, signature_mint, signature_read

KEY = b"deployment-secret"


def forge(body: str, key: bytes = KEY) -> str:
    """A signature with a valid HMAC over an arbitrary body (what only the key holder can make)."""
    return f"{PREFIX}{body}.{hmac.new(key, body.encode('ascii'), hashlib.sha256).hexdigest()[:24]}"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@pytest.mark.parametrize("payload", [{"k": "openai_chat"}, {}, {"enc": "gAAAA" * 50, "id": "rs_1", "n": [1, 2]}])
def test_mint_then_read_round_trips(payload: dict[str, object]) -> None:
    signature = signature_mint(payload, KEY)
    assert signature.startswith(PREFIX)
    assert "=" not in signature
    assert signature_read(signature, KEY) == payload


def test_minting_is_deterministic() -> None:
    assert signature_mint({"k": "x"}, KEY) == signature_mint({"k": "x"}, KEY)
    assert signature_mint({"k": "x"}, KEY) != signature_mint({"k": "x"}, b"other")


def test_a_signature_from_another_deployment_is_not_ours() -> None:
    assert signature_read(signature_mint({"k": "x"}, b"other"), KEY) is None


def test_tampered_payload_or_mac_is_refused() -> None:
    signature = signature_mint({"k": "openai_chat"}, KEY)
    body, _, mac = signature[len(PREFIX) :].rpartition(".")
    other = b64(orjson.dumps({"k": "admin"}))
    assert signature_read(f"{PREFIX}{other}.{mac}", KEY) is None
    assert signature_read(f"{PREFIX}{body}.{'0' * 24}", KEY) is None
    assert signature_read(f"{PREFIX}{body}.{mac[:-1]}", KEY) is None


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",  # Anthropic's own
        "lynkr0.abc.def",
        PREFIX,
        f"{PREFIX}nodot",
        f"{PREFIX}.abcdef",
    ],
)
def test_foreign_or_malformed_signatures_read_as_none(signature: str | None) -> None:
    assert signature_read(signature, KEY) is None


@pytest.mark.parametrize(
    "body",
    [
        "a",  # not decodable base64 (one char past a multiple of four)
        b64(b"not json"),
        b64(b"[1, 2, 3]"),  # JSON, but not an object
        b64(b'"text"'),
    ],
)
def test_validly_signed_garbage_reads_as_none(body: str) -> None:
    assert signature_read(forge(body), KEY) is None
