"""An HTTP carrier's status calls at `/callbacks/{connector}`, GET or POST (SPEC §9).

A call is believed only with its token (channels.http_carrier.tokens): the one made
for the hand-over its `ref` names, or the connector's `callback_token`; any other is
refused with 401 and nothing is stored. The `[connectors.NAME.callback]` table says
where the call gives the status and what each value means: a final one becomes the
receipt of the hand-over, a pending one is acknowledged and changes nothing.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Sequence

from batgate.channels.base import CallbackNews, CallbackRefused, CarrierCall
from batgate.channels.http_carrier import tokens
from batgate.channels.http_carrier.extract import Locator, Source, parse_locator
from batgate.config import HttpCarrierSettings
from batgate.domain.outcomes import CarrierId, PartReceipt
from batgate.domain.status import ChannelStatus

log = logging.getLogger(__name__)

_FORM = "application/x-www-form-urlencoded"


class HttpCallbacks:
    def __init__(self, name: str, settings: HttpCarrierSettings) -> None:
        callback = settings.callback
        if callback is None:
            raise ValueError(f"connectors.{name}: callbacks need a [connectors.{name}.callback]")
        self._name = name
        self._status = parse_locator(callback.status)
        self._id: Locator | None = None if callback.id is None else parse_locator(callback.id)
        self._by_ref = "callback_url" in settings.request.names
        self._meaning: dict[str, ChannelStatus | None] = {
            **{v.casefold(): ChannelStatus.DELIVERED for v in callback.delivered},
            **{v.casefold(): ChannelStatus.UNDELIVERABLE for v in callback.undeliverable},
            **{v.casefold(): None for v in callback.pending},
        }
        self._unknown = ChannelStatus.UNDELIVERABLE if callback.unknown == "undeliverable" else None
        self._key = tokens.secret(name, settings.callback_token, settings.credentials) or b""
        self._fixed = settings.callback_token

    def read(self, call: CarrierCall) -> CallbackNews:
        ref, token = _first(call.query, "ref"), _first(call.query, "token")
        if not tokens.genuine(
            self._key, self._name, ref if self._by_ref else None, token, self._fixed
        ):
            # The token is not told, nor logged: the route logs this message.
            raise CallbackRefused(401, "UNAUTHORIZED", "not the carrier's call: no valid token")
        source = Source(call.body, [*call.query, *_form(call)], call.headers)
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


def _first(pairs: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in pairs if k == name), None)


def _form(call: CarrierCall) -> list[tuple[str, str]]:
    """A form body's fields (after the query's, so a query parameter wins)."""
    if not call.headers.get("content-type", "").startswith(_FORM):
        return []
    return urllib.parse.parse_qsl(call.body.decode("utf-8", "replace"), keep_blank_values=True)
