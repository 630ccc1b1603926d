"""Standard Webhooks signing, and verification for receivers.

A receiver checks a batgate webhook in one call::

    from batgate.webhooks import verify, WebhookVerificationError

    try:
        event = verify(request_body, request_headers, "whsec_...")
    except WebhookVerificationError as exc:
        return 400, str(exc)

Exceptions:
    WebhookVerificationError   missing headers, no matching signature, or a
                               timestamp more than 5 minutes off (replay guard)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks import WebhookVerificationError as _LibraryError

__all__ = ["WebhookVerificationError", "sign", "signature_headers", "verify"]


class WebhookVerificationError(Exception):
    """The webhook is not authentic, or too old or too new to be trusted."""


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` over `id.timestamp.body` with the decoded secret."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return str(Webhook(secret).sign(webhook_id, moment, body.decode()))


def signature_headers(
    secrets: Iterable[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers; one signature per secret, space-separated.

    During a secret rotation both the new and the old secret sign, so receivers
    can switch at their own pace.
    """
    signatures = " ".join(sign(s, webhook_id, timestamp, body) for s in secrets)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }


def verify(body: bytes | str, headers: Mapping[str, str], secret: str) -> Any:
    """Check a webhook's signature and freshness; return its parsed JSON payload.

    Raises WebhookVerificationError, with the reason, when the headers are
    missing, no signature matches `secret`, or the timestamp is more than five
    minutes from now.
    """
    try:
        webhook = Webhook(secret)
    except Exception as exc:
        raise WebhookVerificationError(f"unusable webhook secret: {exc}") from None
    try:
        return webhook.verify(body, dict(headers))
    except _LibraryError as exc:
        raise WebhookVerificationError(str(exc)) from None
    except ValueError as exc:  # a malformed signature header or body
        raise WebhookVerificationError(f"malformed webhook: {exc}") from None
