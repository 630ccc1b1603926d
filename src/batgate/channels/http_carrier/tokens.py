"""The secret that tells a carrier's callbacks from anyone else's calls. Pure.

Each hand-over's `{callback_url}` carries batgate's reference of it and a token made
for that reference alone: `…/callbacks/NAME?ref=MSG.STEP&token=HMAC(secret, NAME:ref)`.
So a callback can only be about the hand-over whose URL it was given, and a URL that
leaks (a carrier's log) tells nothing about any other message.

The secret is the connector's `callback_token` when it is set; else it is derived
from the connector's own credentials (its password and header values), so that every
process with the same configuration agrees on it without storing anything. A
carrier whose callback URL is set once at the carrier (no `{callback_url}` in the
request) sends `?token=CALLBACK_TOKEN` itself.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import urllib.parse
from collections.abc import Iterable

_TOKEN_HEX = 32  # 128 bits


def secret(name: str, token: str | None, credentials: Iterable[str]) -> bytes | None:
    """The connector's callback secret; None when there is nothing to make it from."""
    if token:
        return token.encode()
    material = "\x00".join(c for c in credentials if c)
    if not material:
        return None
    return hmac.new(
        material.encode(), f"batgate callbacks {name}".encode(), hashlib.sha256
    ).digest()


def message_token(key: bytes, name: str, ref: str) -> str:
    return hmac.new(key, f"{name}:{ref}".encode(), hashlib.sha256).hexdigest()[:_TOKEN_HEX]


def callback_url(base: str, name: str, ref: str, key: bytes) -> str:
    """The `{callback_url}` of one hand-over."""
    query = urllib.parse.urlencode({"ref": ref, "token": message_token(key, name, ref)})
    return f"{base}/callbacks/{urllib.parse.quote(name)}?{query}"


def genuine(key: bytes, name: str, ref: str | None, token: str | None, fixed: str | None) -> bool:
    """Whether a call's `token` is the one made for its `ref`, or the configured
    `callback_token` (`fixed`) itself."""
    if token is None:
        return False
    if fixed is not None and hmac.compare_digest(token.encode(), fixed.encode()):
        return True
    if ref is None:
        return False
    return hmac.compare_digest(token.encode(), message_token(key, name, ref).encode())


def default_base(host: str, port: int) -> str:
    """Where this gateway's API listens, as a carrier on the same host reaches it: the
    `callback_base` of a connector that does not set one."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a name
    return f"http://{host}:{port}"
