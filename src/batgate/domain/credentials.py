"""API keys, passwords and webhook secrets: how they are made and checked.

Keys are 32 random bytes shown once and stored as a SHA-256 (a fast hash is right
for a high-entropy key, and lets a request find its account by index). Passwords
are low-entropy, so they get Argon2id, a slow KDF.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    # Verified against when the username is unknown, so both cases take the same time.
    return _hasher.hash(secrets.token_urlsafe(16))


def new_api_key() -> str:
    return secrets.token_urlsafe(32)


def key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def new_webhook_secret() -> str:
    """Standard Webhooks form: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-time-ish: an absent hash still costs one Argon2 verification."""
    try:
        ok = _hasher.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None
