"""An HTTP carrier's calls at `/callbacks/{connector}`, GET or POST (SPEC §9): status
reports, and messages from phones (inbound).

A call whose `[connectors.NAME.inbound]` condition (`when`) holds brings a message
from a phone (channels.http_carrier.inbound); any other is a status call.

A call is believed only with its token (channels.http_carrier.tokens). A status call:
the one made for the hand-over its `ref` names, or the connector's `callback_token`;
an inbound call: the `callback_token` itself, since no hand-over names it. Any other
is refused with 401 and nothing is stored. The `[connectors.NAME.callback]` table says
where a status call gives the status and what each value means: a final one becomes
the receipt of the hand-over, a pending one is acknowledged and changes nothing.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Sequence

from batgate.channels.base import CallbackNews, CallbackRefused, CarrierCall
from batgate.channels.http_carrier import tokens
from batgate.channels.http_carrier.extract import Locator, Source, parse_locator
from batgate.channels.http_carrier.inbound import InboundRules, Unreadable, octet_params
from batgate.config import HttpCarrierSettings
from batgate.domain.outcomes import CarrierId, PartReceipt
from batgate.domain.status import ChannelStatus

log = logging.getLogger(__name__)

_FORM = "application/x-www-form-urlencoded"


def _unauthorized() -> CallbackRefused:
    # The token is not told, nor logged: the route logs this message.
    return CallbackRefused(401, "UNAUTHORIZED", "not the carrier's call: no valid token")


class HttpCallbacks:
    def __init__(self, name: str, settings: HttpCarrierSettings) -> None:
        callback, inbound = settings.callback, settings.inbound
        if callback is None and inbound is None:
            raise ValueError(f"connectors.{name}: callbacks need a [connectors.{name}.callback]")
        self._name = name
        self._inbound = (
            None if inbound is None else InboundRules.of(**inbound.model_dump(by_alias=False))
        )
        self._status: Locator | None = None
        self._id: Locator | None = None
        self._meaning: dict[str, ChannelStatus | None] = {}
        self._unknown: ChannelStatus | None = None
        if callback is not None:
            self._status = parse_locator(callback.status)
            self._id = None if callback.id is None else parse_locator(callback.id)
            self._meaning = {
                **{v.casefold(): ChannelStatus.DELIVERED for v in callback.delivered},
                **{v.casefold(): ChannelStatus.UNDELIVERABLE for v in callback.undeliverable},
                **{v.casefold(): None for v in callback.pending},
            }
            if callback.unknown == "undeliverable":
                self._unknown = ChannelStatus.UNDELIVERABLE
        self._by_ref = "callback_url" in settings.request.names
        self._key = tokens.secret(name, settings.callback_token, settings.credentials) or b""
        self._fixed = settings.callback_token

    def read(self, call: CarrierCall) -> CallbackNews:
        source = Source(call.body, [*call.query, *_form(call)], call.headers)
        if self._inbound is not None and self._inbound.holds(source):
            return self._read_inbound(self._inbound, call, source)
        return self._read_status(call, source)

    def _read_status(self, call: CarrierCall, source: Source) -> CallbackNews:
        ref, token = _first(call.query, "ref"), _first(call.query, "token")
        if not tokens.genuine(
            self._key, self._name, ref if self._by_ref else None, token, self._fixed
        ):
            raise _unauthorized()
        if self._status is None:  # only inbound calls are expected
            raise CallbackRefused(400, "INVALID_REQUEST", "not an inbound call (see its `when`)")
        part = ref if self._by_ref else self._id.find(source) if self._id else None
        if part is None:
            where = "its ref" if self._by_ref else f"the id ({self._id})"
            raise CallbackRefused(400, "INVALID_REQUEST", f"the call does not give {where}")
        said = self._status.find(source)
        if said is None:
            raise CallbackRefused(400, "INVALID_REQUEST", f"no status at {self._status}")
        folded = said.casefold()
        if folded not in self._meaning:
            log.info("callback to %s: status %r is not in its mapping", self._name, said[:64])
        status = self._meaning.get(folded, self._unknown)
        if status is None:
            return CallbackNews()  # pending: the hand-over is `processing` here already
        said = f"carrier status {said[:64]!r}"
        return CallbackNews((PartReceipt(CarrierId(part[:64]), status, said),))

    def _read_inbound(self, rules: InboundRules, call: CarrierCall, source: Source) -> CallbackNews:
        # No hand-over names an inbound call: only the fixed token speaks for the carrier
        # (a status call's URL, leaked, cannot bring messages).
        if not tokens.genuine(b"", self._name, None, _first(call.query, "token"), self._fixed):
            raise _unauthorized()
        raw_query = call.raw_query or urllib.parse.urlencode(call.query).encode()
        form = call.body if _is_form(call) else None
        try:
            message = rules.read(source, octet_params(raw_query, form))
        except Unreadable as exc:
            raise CallbackRefused(400, "INVALID_REQUEST", str(exc)) from None
        return CallbackNews(
            inbound=(message,), answer=rules.answer, content_type=rules.content_type
        )


def _first(pairs: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in pairs if k == name), None)


def _is_form(call: CarrierCall) -> bool:
    return call.headers.get("content-type", "").startswith(_FORM)


def _form(call: CarrierCall) -> list[tuple[str, str]]:
    """A form body's fields (after the query's, so a query parameter wins)."""
    if not _is_form(call):
        return []
    return urllib.parse.parse_qsl(call.body.decode("utf-8", "replace"), keep_blank_values=True)
