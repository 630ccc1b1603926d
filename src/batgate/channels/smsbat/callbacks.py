"""An SMSBAT upstream's webhooks at `/callbacks/{connector}`: Standard Webhooks,
signed with the connector's `webhook_secret` (SPEC §4, §9).

An unsigned, wrongly signed or stale call (a timestamp more than five minutes off)
is refused with 401 and nothing is stored. A status event that is final becomes the
receipt of the step it carried, and its cost that step's carrier cost; any other
status event is acknowledged and dropped (the step is `processing` here already).
An `inbound` event (SPEC §10: a phone's message to a number the upstream account
owns) becomes an inbound message of this gateway, routed by its own owned numbers.
"""

from __future__ import annotations

import orjson

from batgate.channels.base import CallbackNews, CallbackRefused, CarrierCall
from batgate.channels.smsbat import wire
from batgate.config import SmsbatSettings
from batgate.webhooks import WebhookVerificationError, verify


class SmsbatWebhooks:
    def __init__(self, name: str, settings: SmsbatSettings) -> None:
        if settings.webhook_secret is None:
            raise ValueError(f"connectors.{name}: webhooks need a webhook_secret")
        self._secret = settings.webhook_secret
        self._currency = settings.currency

    def read(self, call: CarrierCall) -> CallbackNews:
        if call.method != "POST":
            raise CallbackRefused(405, "METHOD_NOT_ALLOWED", "an upstream's webhooks are POSTed")
        try:
            event = verify(call.body, call.headers, self._secret)
        except WebhookVerificationError as exc:
            raise CallbackRefused(401, "UNAUTHORIZED", f"not a signed webhook: {exc}") from None
        try:
            if isinstance(event, dict) and event.get("event") == "inbound":
                return CallbackNews(inbound=(wire.inbound_of(event),))
            news = wire.news_of(event, self._currency)
        except (wire.Unreadable, orjson.JSONDecodeError) as exc:
            raise CallbackRefused(400, "INVALID_REQUEST", f"not a status event: {exc}") from None
        receipts = () if news.receipt is None else (news.receipt,)
        costs = () if news.cost is None else (news.cost,)
        return CallbackNews(receipts, costs)
