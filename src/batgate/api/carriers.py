"""Carriers' calls: `/callbacks/{connector}` (SPEC §9), GET or POST.

Whoever can reach the API can call this route, so nothing is believed before the
connector's kind has checked it (`CallbackReader.read`: a signature, basic
credentials or a secret token). What the call brings is stored before it is
answered — receipts through the same path as an SMSC's (`engine.receipts`), carrier
costs beside them — so a carrier that hears 2xx may forget it. A call that is not
the carrier's, or that cannot be read, is answered in the SPEC §6 shape and stores
nothing; a failure to store answers 500, and the carrier calls again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import Response

from batgate.api.errors import ApiError, not_found
from batgate.channels.base import (
    CallbackNews,
    CallbackReader,
    CallbackRefused,
    CarrierCall,
    InboundSink,
    ReceiptSink,
)
from batgate.domain.inbound import InboundText
from batgate.domain.outcomes import PartReceipt
from batgate.store.manager import Store

log = logging.getLogger(__name__)

MAX_CALLBACK_BYTES = 1 << 20


class CallbackSink(ReceiptSink, InboundSink, Protocol):
    """Where carriers' calls put what they bring: receipts and inbound messages."""


class StoredReceipts:
    """Receipts stored and noted on their messages, for a process without an engine:
    a dispatcher of any process applies them (engine.receipts, 3.); inbound messages
    taken as any process takes them (engine.reception)."""

    def __init__(self, store: Store, reception: InboundSink) -> None:
        self._store = store
        self._reception = reception

    async def receipts(self, connector: str, receipts: Sequence[PartReceipt]) -> None:
        await self._store.receipts.record(connector, receipts)

    async def inbound(self, connector: str, messages: Sequence[InboundText]) -> None:
        await self._reception.inbound(connector, messages)


class GroupedNews:
    """What concurrent callbacks bring, stored together (a group commit): the first
    call's news is written at once; calls that come while a write is under way wait
    for it and then go in together — their receipts in one transaction per connector,
    their carrier costs in another. A carrier that calls back many times at once (an
    upstream's webhooks, 64 at a time) costs a transaction per group, not per call.
    Each caller returns once its news is stored."""

    def __init__(self, sink: CallbackSink, store: Store) -> None:
        self._sink = sink
        self._store = store
        self._pending: dict[str, list[tuple[CallbackNews, asyncio.Future[None]]]] = {}
        self._writer: asyncio.Task[None] | None = None

    async def store(self, connector: str, news: CallbackNews) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(connector, []).append((news, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        await future

    async def _write(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, {}
                for connector, calls in group.items():
                    try:
                        await self._write_group(connector, [news for news, _ in calls])
                    except Exception as exc:  # each caller answers 500; its carrier calls again
                        for _, future in calls:
                            if not future.done():
                                future.set_exception(exc)
                    else:
                        for _, future in calls:
                            if not future.done():
                                future.set_result(None)
        finally:
            self._writer = None

    async def _write_group(self, connector: str, group: list[CallbackNews]) -> None:
        # A part or a step told twice in one group (a repeated call) is stored once.
        receipts = {r.part.key: r for news in group for r in news.receipts}
        costs = {(c.message_id, c.index): c for news in group for c in news.costs}
        if costs:
            await self._store.carrier_costs.record(connector, list(costs.values()), time.time())
        if receipts:
            await self._sink.receipts(connector, list(receipts.values()))
        inbound = [m for news in group for m in news.inbound]
        if inbound:
            await self._sink.inbound(connector, inbound)


def add_carrier_callbacks(
    app: FastAPI, store: Store, readers: Mapping[str, CallbackReader], sink: CallbackSink
) -> None:
    grouped = GroupedNews(sink, store)

    @app.api_route("/callbacks/{connector}", methods=["GET", "POST"], include_in_schema=False)
    async def carrier_callback(connector: str, request: Request) -> Response:
        reader = readers.get(connector)
        if reader is None:
            raise not_found(f"no connector named {connector!r} takes callbacks here")
        call = CarrierCall(
            request.method,
            {k.lower(): v for k, v in request.headers.items()},
            request.query_params.multi_items(),
            await _body(request),
            request.scope.get("query_string", b""),
        )
        try:
            news = reader.read(call)
        except CallbackRefused as refused:
            log.warning("callback to %s refused: %s", connector, refused.message)
            raise ApiError(refused.status, refused.code, refused.message) from None
        if news.receipts or news.costs or news.inbound:
            await grouped.store(connector, news)
        return Response(news.answer, media_type=news.content_type)


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_CALLBACK_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CALLBACK_BYTES:
            raise _too_large()
    return bytes(body)


def _too_large() -> ApiError:
    return ApiError(413, "PAYLOAD_TOO_LARGE", f"a callback is at most {MAX_CALLBACK_BYTES} bytes")
