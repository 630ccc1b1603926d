"""`AsyncClient`: the SDK over `httpx.AsyncClient`, running the core's operations on asyncio.

Many statuses at once (`statuses`, `wait_for_all`) are read by tasks, at most
`concurrency` at a time. The methods, their arguments and their answers are
`Client`'s: both run the same operations of `batgate.client.core`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx

from batgate.client.core import (
    DEFAULT_URL,
    Call,
    ClientOptions,
    Command,
    Core,
    Gather,
    Op,
    OutgoingMessage,
    Progress,
    Sleep,
)
from batgate.client.errors import BatgateError
from batgate.client.messages import sms
from batgate.client.models import (
    InboundMessage,
    InboundPage,
    MessagelistPage,
    MessagelistReport,
    MessageStatus,
    SendEntry,
    SendResult,
    StatusResult,
)

T = TypeVar("T")

__all__ = ["AsyncClient"]


class AsyncClient:
    """An asyncio client for batgate or any SMSBAT-compatible endpoint.

    `AsyncClient(base_url, api_key=…)` authenticates with the `X-Authorization-Key`
    header; `username=…, password=…` with HTTP Basic; `api_key=…,
    key_as_password=True` with Basic `@:key`. Other options: `timeout` (seconds or
    an `httpx.Timeout`, default 10 s), `transport` (any `httpx.AsyncBaseTransport`),
    `retries` (a `Retries`, True for the default, False for none), `cache` (a
    `StatusCache`, True for the default, False for none — the default), `poll` (a
    `PollPolicy` for the wait methods), `sender` (the `from` of messages without
    one), `headers` (added to every request). Use it as an async context
    manager, or await `aclose()`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._core = Core(base_url, options)
        self._http = httpx.AsyncClient(transport=transport, follow_redirects=False)

    @classmethod
    def from_env(cls, **options: Unpack[ClientOptions]) -> Self:
        """`BATGATE_URL` (default http://127.0.0.1:8000) and `BATGATE_API_KEY`."""
        options.setdefault("api_key", os.environ.get("BATGATE_API_KEY"))
        return cls(os.environ.get("BATGATE_URL") or DEFAULT_URL, **options)

    # -- sending ---------------------------------------------------------------------------

    async def send(
        self, messages: Iterable[OutgoingMessage], *, idempotency_key: str | None = None
    ) -> SendResult:
        """Send a batch (builders' `Message`s or wire dicts); each message accepted or rejected."""
        return await self._run(self._core.send(messages, idempotency_key))

    async def send_one(
        self, message: OutgoingMessage, *, idempotency_key: str | None = None
    ) -> SendEntry:
        """Send one message; its accepted entry, or MessageRejectedError with the SPEC code."""
        return await self._run(self._core.send_one(message, idempotency_key))

    async def send_sms(
        self,
        to: str,
        text: str,
        *,
        sender: str | None = None,
        customer_message_id: str | None = None,
        ttl: int | None = None,
        send_at: datetime | str | None = None,
        promotional: bool | None = None,
        idempotency_key: str | None = None,
    ) -> SendEntry:
        """Send one SMS; its accepted entry (`message_id`, `parts`), or MessageRejectedError.

        `send_at`: send it later (an aware datetime, or RFC 3339 text; a naive datetime
        is a ValueError); `promotional`: quiet hours hold it (batgate, SPEC §12).
        """
        message = sms(
            to,
            text,
            sender=sender,
            customer_message_id=customer_message_id,
            ttl=ttl,
            send_at=send_at,
            promotional=promotional,
        )
        return await self.send_one(message, idempotency_key=idempotency_key)

    async def cancel(self, message_id: str) -> MessageStatus:
        """Cancel a message still `scheduled` (batgate, SPEC §12); its status, now
        `permanenterror` with cost 0. NotCancellableError once it is past `scheduled`."""
        return await self._run(self._core.cancel(message_id))

    # -- statuses ----------------------------------------------------------------------------

    async def status(self, message_id: str) -> MessageStatus:
        return await self._run(self._core.status(message_id))

    async def statuses(
        self,
        message_ids: Sequence[str],
        *,
        concurrency: int = 10,
        rate_limit: float | None = None,
        burst: int = 1,
    ) -> list[StatusResult]:
        """Statuses of many messages, in input order; an error is reported in its result.

        Against batgate, up to 1000 ids per request (`POST /bat/message/status`);
        against an endpoint without that route (it answers 404 or 405, which the
        client then remembers), one request per id. At most `concurrency` requests
        at once and, with `rate_limit`, at most that many requests per second
        (bursts of `burst`). Only an AuthenticationError is raised, since it would
        be every id's error.
        """
        op = self._core.statuses(
            message_ids, concurrency=concurrency, rate_limit=rate_limit, burst=burst
        )
        return await self._run(op)

    async def wait_for_delivery(self, message_id: str, *, timeout: float = 60.0) -> MessageStatus:
        """The final status (delivered or not); DeliveryTimeoutError after `timeout` seconds."""
        return await self._run(self._core.wait_for_delivery(message_id, timeout=timeout))

    async def wait_for_all(
        self,
        message_ids: Sequence[str],
        *,
        timeout: float = 60.0,
        concurrency: int = 10,
        on_progress: Progress | None = None,
    ) -> list[MessageStatus]:
        """Final statuses of all, in input order; `on_progress` sees every round's statuses."""
        op = self._core.wait_for_all(
            message_ids, timeout=timeout, concurrency=concurrency, on_progress=on_progress
        )
        return await self._run(op)

    async def report(self, messagelist_id: int) -> MessagelistReport:
        """Counts per status and total cost of a message list (a batgate extension)."""
        return await self._run(self._core.report(messagelist_id))

    async def messagelist(
        self, messagelist_id: int, *, limit: int = 100, cursor: str | None = None
    ) -> MessagelistPage:
        """One page of a list's statuses (`limit` 1-1000, from `cursor`: the previous page's
        `next_cursor`), with the whole list's report (a batgate extension)."""
        return await self._run(self._core.messagelist(messagelist_id, limit=limit, cursor=cursor))

    async def iter_messagelist(
        self, messagelist_id: int, *, page_size: int = 1000
    ) -> AsyncIterator[MessageStatus]:
        """Every message's status of a list, page after page, in id order (batgate)."""
        cursor = None
        while True:
            page = await self.messagelist(messagelist_id, limit=page_size, cursor=cursor)
            for status in page.messages:
                yield status
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- inbound messages --------------------------------------------------------------------

    async def inbound(self, after: str | None = None, *, limit: int = 100) -> InboundPage:
        """One page of the account's inbound messages, oldest first (`limit` 1-1000, after
        the cursor `after`: a previous page's `next_cursor`; batgate)."""
        return await self._run(self._core.inbound(after=after, limit=limit))

    async def iter_inbound(
        self, after: str | None = None, *, page_size: int = 1000
    ) -> AsyncIterator[InboundMessage]:
        """Every inbound message after the cursor `after`, page after page, oldest first."""
        cursor = after
        while True:
            page = await self.inbound(cursor, limit=page_size)
            for message in page.messages:
                yield message
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def core(self) -> Core:
        return self._core

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the driver --------------------------------------------------------------------------

    async def _run(self, op: Op[T]) -> T:
        reply: Any = None
        try:
            while True:
                try:
                    command = op.send(reply)
                except StopIteration as done:
                    result: T = done.value
                    return result
                reply = await self._do(command)
        finally:
            op.close()

    async def _do(self, command: Command) -> Any:
        if isinstance(command, Call):
            try:
                return await self._http.send(command.request)
            except httpx.TransportError as exc:
                return exc
        if isinstance(command, Sleep):
            await asyncio.sleep(command.seconds)
            return None
        return await self._gather(command)

    async def _gather(self, command: Gather) -> list[Any]:
        slots = asyncio.Semaphore(max(1, command.concurrency))

        async def settle(op: Op[Any]) -> Any:
            async with slots:
                try:
                    return await self._run(op)
                except BatgateError as exc:
                    return exc

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(settle(op)) for op in command.ops]
        return [task.result() for task in tasks]
