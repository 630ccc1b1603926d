"""API keys, passwords and webhook secrets (SPEC §1, §4)."""

from __future__ import annotations

import base64
import binascii
import hashlib

import pytest

from batgate.domain.credentials import (
    hash_password,
    key_hash,
    new_api_key,
    new_webhook_secret,
    verify_password,
)


def test_webhook_secret_is_whsec_and_base64_of_enough_bytes() -> None:
    secrets = {new_webhook_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert secret.startswith("whsec_")
        raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        assert len(raw) >= 24


def test_webhook_secret_decodes_strictly() -> None:
    secret = new_webhook_secret()
    # Standard base64 (not URL-safe), so every Standard Webhooks library decodes it.
    try:
        base64.b64decode(secret[len("whsec_") :], validate=True)
    except binascii.Error as exc:  # pragma: no cover - the assertion is the point
        pytest.fail(f"not standard base64: {exc}")


def test_api_keys_are_random_and_long() -> None:
    keys = {new_api_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(key) >= 43 for key in keys)  # 32 bytes in URL-safe base64


# (key, expected SHA-256 hex)
KEY_HASHES: list[tuple[str, str]] = [
    ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("ключ", hashlib.sha256("ключ".encode()).hexdigest()),
]


@pytest.mark.parametrize(("key", "digest"), KEY_HASHES)
def test_key_hash(key: str, digest: str) -> None:
    assert key_hash(key) == digest
    assert len(key_hash(key)) == 64


def test_key_hash_differs_per_key() -> None:
    assert key_hash("key-1") != key_hash("key-2")
    assert key_hash("key-1") == key_hash("key-1")


def test_key_hash_accepts_lone_surrogates() -> None:
    # A header decoded as latin-1 can't hold one, but a key must never crash the lookup.
    assert len(key_hash("\ud800")) == 64


@pytest.fixture(scope="module")
def hashed() -> str:
    return hash_password("correct horse")


def test_password_hash_is_argon2id_and_salted(hashed: str) -> None:
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed


# (id, stored hash or None ("use the fixture"), password, expected)
@pytest.mark.parametrize(
    ("stored", "password", "expected"),
    [
        pytest.param("fixture", "correct horse", True, id="right"),
        pytest.param("fixture", "correct horse ", False, id="wrong"),
        pytest.param("fixture", "", False, id="empty"),
        pytest.param(None, "correct horse", False, id="no-hash"),
        pytest.param(None, "", False, id="no-hash-empty"),
        pytest.param("not-a-hash", "correct horse", False, id="garbage-hash"),
    ],
)
def test_verify_password(hashed: str, stored: str | None, password: str, expected: bool) -> None:
    actual = hashed if stored == "fixture" else stored
    assert verify_password(actual, password) is expected
