"""batgate's webhooks as typed events: a status change, or an inbound message.

`batgate.webhooks.verify` checks a request's Standard Webhooks signature and answers
its JSON; `verify_webhook` does that and types the event, `parse_webhook` types a
body already verified::

    from batgate.client import InboundMessage, verify_webhook

    event = verify_webhook(body, headers, "whsec_...")   # WebhookVerificationError if forged
    if isinstance(event, InboundMessage):
        print(event.sender, event.text)                   # SPEC §10: "event": "inbound"
    else:
        print(event.message_id, event.status)             # SPEC §4: a MessageStatus

A status event becomes the `MessageStatus` a poll would answer (its `timestamp`, when
the message entered the status, is in `raw`); an `"event": "inbound"` body an
`InboundMessage`, as `inbound()` lists it. Any other event is a ProtocolError: a
receiver should acknowledge it (2xx) and ignore it, as events a newer server adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from batgate.client.errors import ProtocolError
from batgate.client.models import InboundMessage, MessageStatus
from batgate.webhooks import WebhookVerificationError, verify

__all__ = ["WebhookEvent", "WebhookVerificationError", "parse_webhook", "verify_webhook"]

WebhookEvent: TypeAlias = MessageStatus | InboundMessage

INBOUND_EVENT = "inbound"


def parse_webhook(payload: Any) -> WebhookEvent:
    """The typed event of a verified webhook's JSON payload (a dict, as `verify` answers).

    Raises ProtocolError for a payload that is neither a status event nor an inbound
    message, or that misses a field the contract requires.
    """
    if not isinstance(payload, Mapping):
        raise ProtocolError(f"a webhook payload is a JSON object, not {type(payload).__name__}")
    event = payload.get("event")
    if event == INBOUND_EVENT:
        return InboundMessage.from_json(payload)
    if event is None and "deliverystatus" in payload:
        status = MessageStatus.from_json(payload, "")
        if not status.message_id:
            raise ProtocolError("a status webhook without a messageId")
        return status
    raise ProtocolError(f"not a batgate webhook event: event {event!r}")


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str) -> WebhookEvent:
    """Check the signature and freshness of a webhook request (`batgate.webhooks.verify`),
    then type its event (`parse_webhook`).

    Raises WebhookVerificationError when it is not authentic or not fresh (answer 400),
    ProtocolError when it is authentic but not an event this SDK knows (answer 2xx).
    """
    return parse_webhook(verify(body, headers, secret))
