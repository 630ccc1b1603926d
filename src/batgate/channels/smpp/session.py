"""One SMPP connection to an SMSC: bind, requests and their responses, keepalive, unbind.

An :class:`asyncio.Protocol`, so PDUs are cut from the byte stream and matched to
their requests in the event loop's own callback, with no task per read.

- **Matching.** A request is put in the table of outstanding requests *before* its
  bytes are written, so a response that comes back at once (or a receipt that
  overtakes it) always finds it.
- **Window.** At most `window` submit_sm are outstanding at once; a sender waits for
  a free slot. Binds, enquire_link and unbind go beside the window.
- **Timeouts.** Every request has one; a request without an answer in time fails
  with :class:`NoAnswer` (the SMSC may have taken it even so).
- **Throughput.** At most `throughput` submit_sm per second leave this connection.
- **Keepalive.** After `enquire_link_interval` seconds with nothing heard, an
  enquire_link; no answer in `response_timeout` closes the connection.
- **Requests from the SMSC.** enquire_link and unbind are answered here; deliver_sm
  and data_sm go to the owner's handler, which answers them when it has dealt with
  them (a receipt only once it is stored); anything else gets a generic_nack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from batgate.channels.smpp.pdu import (
    RESPONSE_BIT,
    Bind,
    Body,
    Command,
    Empty,
    MessageIdResp,
    Pdu,
    PduError,
    ShortMessage,
    Status,
    decode,
    encode,
    frame_length,
    status_name,
)
from batgate.domain.ratelimit import Pacer

log = logging.getLogger(__name__)


class SessionError(Exception):
    """Something went wrong on the connection."""


class LinkClosed(SessionError):
    """The connection is gone; a request on it may or may not have reached the SMSC."""


class NoAnswer(SessionError):
    """No response within the timeout; the SMSC may have taken the request even so."""


class NotSent(SessionError):
    """The request was not sent: no window slot freed up, or its time ran out first."""


class BindRefused(SessionError):
    def __init__(self, status: int) -> None:
        super().__init__(f"the SMSC refused the bind: {status_name(status)}")
        self.status = status


@dataclass(frozen=True, slots=True)
class SessionSettings:
    system_id: str
    password: str
    system_type: str = ""
    bind: Command = Command.BIND_TRANSCEIVER
    window: int = 10
    throughput: float = 0.0  # submit_sm per second; 0: no limit
    response_timeout: float = 10.0
    enquire_link_interval: float = 30.0
    connect_timeout: float = 10.0


RequestHandler = Callable[["Session", Pdu], None]


class Session(asyncio.Protocol):
    def __init__(self, settings: SessionSettings, on_request: RequestHandler, name: str) -> None:
        self.settings = settings
        self.name = name
        self.smsc_system_id = ""
        self._on_request = on_request
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._pending: dict[int, tuple[asyncio.Future[Pdu], asyncio.TimerHandle]] = {}
        self._window = asyncio.Semaphore(settings.window)
        self._sequence = 0
        self.pacer = Pacer(settings.throughput)
        self._heard_at = self._loop.time()
        self._keepalive: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.bound = False
        self.unbinding = False
        self.outstanding = 0  # submit_sm sent or waiting for a window slot

    # -- opening and closing ---------------------------------------------------------

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        settings: SessionSettings,
        on_request: RequestHandler,
        name: str,
    ) -> Session:
        """Connect and bind; raises OSError / TimeoutError, BindRefused or NoAnswer."""
        session = cls(settings, on_request, name)
        loop = asyncio.get_running_loop()
        # Not wait_for: on Python 3.11 a cancellation meeting the connect is dropped,
        # and a closing connector's link task would bind again and never end.
        async with asyncio.timeout(settings.connect_timeout):
            await loop.create_connection(lambda: session, host, port)
        try:
            await session._bind()
        except BaseException:
            session.abort()
            raise
        session._keepalive = asyncio.create_task(session._keep_alive(), name=f"{name} keepalive")
        return session

    async def _bind(self) -> None:
        s = self.settings
        body = Bind(s.bind, s.system_id, s.password, s.system_type)
        answer = await self.request(body, s.response_timeout)
        if answer.status != Status.ESME_ROK:
            raise BindRefused(answer.status)
        self.smsc_system_id = getattr(answer.body, "system_id", "")
        self.bound = True

    async def unbind(self, timeout: float) -> None:
        """Let outstanding submits finish (up to `timeout`), unbind, close."""
        self.unbinding = True
        loop = self._loop
        deadline = loop.time() + timeout
        while self.outstanding and loop.time() < deadline and not self.closed.done():
            await asyncio.sleep(0.01)
        if self._transport is not None and not self.closed.done():
            with contextlib.suppress(SessionError, TimeoutError):
                await self.request(Empty(Command.UNBIND), max(0.1, deadline - loop.time()))
        self.bound = False
        self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    @property
    def usable(self) -> bool:
        return self.bound and not self.unbinding and not self.closed.done()

    # -- requests ------------------------------------------------------------------

    async def submit(self, body: ShortMessage, deadline: float) -> Pdu:
        """A submit_sm within the window and the throughput limit; its response PDU.

        Waits for a window slot until `deadline` (loop time; WindowFull, nothing
        sent), then for the answer up to `response_timeout` or the deadline,
        whichever is first. Raises LinkClosed or NoAnswer when there is no answer.
        """
        self.outstanding += 1
        try:
            if self._window.locked():
                try:
                    async with asyncio.timeout_at(deadline):  # no task, unlike wait_for
                        await self._window.acquire()
                except TimeoutError:
                    raise NotSent(f"{self.name}: the window stayed full") from None
            else:
                await self._window.acquire()
            try:
                if self.closed.done():
                    # Woken by connection_lost (see there): the connection is gone.
                    raise LinkClosed(f"{self.name}: connection lost before it could be sent")
                wait = self.pacer.reserve(self._loop.time(), deadline)
                if wait is None:
                    raise NotSent(f"{self.name}: its throughput slot comes after its deadline")
                if wait > 0:
                    await asyncio.sleep(wait)
                left = deadline - self._loop.time()
                if left <= 0:
                    # Sent now, it could only time out and be sent again: a duplicate.
                    raise NotSent(f"{self.name}: its time ran out before it could be sent")
                return await self.request(body, min(self.settings.response_timeout, left))
            finally:
                self._window.release()
        finally:
            self.outstanding -= 1

    async def request(self, body: Body, timeout: float) -> Pdu:
        """Send a request and wait for its response (of any command status)."""
        transport = self._transport
        if transport is None or self.closed.done() or transport.is_closing():
            raise LinkClosed(f"{self.name}: not connected")
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        sequence = self._sequence
        future: asyncio.Future[Pdu] = self._loop.create_future()
        timer = self._loop.call_later(timeout, self._expire, sequence, body.command)
        self._pending[sequence] = (future, timer)  # before the write: see the docstring
        transport.write(encode(Pdu(body, sequence)))
        return await future

    def respond(self, request: Pdu, body: Body, status: int = Status.ESME_ROK) -> None:
        """Answer a request of the SMSC's (dropped silently when the connection is gone)."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(encode(Pdu(body, request.sequence, status)))

    def _expire(self, sequence: int, command: Command) -> None:
        entry = self._pending.pop(sequence, None)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(
                NoAnswer(f"{self.name}: no answer to {command.name.lower()} #{sequence}")
            )

    # -- the keepalive ---------------------------------------------------------------

    async def _keep_alive(self) -> None:
        interval = self.settings.enquire_link_interval
        while not self.closed.done():
            quiet = self._loop.time() - self._heard_at
            if quiet < interval:
                await asyncio.sleep(interval - quiet)
                continue
            try:
                await self.request(Empty(Command.ENQUIRE_LINK), self.settings.response_timeout)
            except NoAnswer:
                log.warning("%s: no answer to enquire_link: closing the connection", self.name)
                self.abort()
                return
            except LinkClosed:
                return

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # TCP: always a Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.bound = False
        why = exc or "closed"
        pending, self._pending = self._pending, {}
        for future, timer in pending.values():
            timer.cancel()
            if not future.done():
                future.set_exception(LinkClosed(f"{self.name}: connection lost ({why})"))
        if self._keepalive is not None and self._keepalive is not asyncio.current_task():
            self._keepalive.cancel()
        if not self.closed.done():
            self.closed.set_result(None)
        # Sends waiting for a window slot must not wait for their deadline on a dead
        # connection: wake one; each woken sender sees `closed`, fails with LinkClosed
        # and, releasing its slot, wakes the next.
        self._window.release()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        self._heard_at = self._loop.time()
        while len(buffer) >= 4:
            try:
                length = frame_length(buffer)
            except PduError as exc:
                log.error("%s: %s: closing the connection", self.name, exc)
                self._buffer = bytearray()
                self.abort()
                return
            if len(buffer) < length:
                return
            frame = bytes(buffer[:length])
            del buffer[:length]
            self._handle(frame)

    def _handle(self, frame: bytes) -> None:
        command_id = int.from_bytes(frame[4:8], "big")
        sequence = int.from_bytes(frame[12:16], "big")
        if command_id & RESPONSE_BIT:
            self._answer(frame, sequence)
            return
        try:
            pdu = decode(frame)
        except PduError as exc:
            log.warning("%s: undecodable request from the SMSC: %s", self.name, exc)
            nack = Pdu(Empty(Command.GENERIC_NACK), sequence, exc.status)
            if self._transport is not None:
                self._transport.write(encode(nack))
            return
        command = pdu.command
        if command is Command.ENQUIRE_LINK:
            self.respond(pdu, Empty(Command.ENQUIRE_LINK_RESP))
        elif command is Command.UNBIND:
            log.info("%s: the SMSC unbinds", self.name)
            self.bound = False
            self.respond(pdu, Empty(Command.UNBIND_RESP))
            self.close()
        elif command in (Command.DELIVER_SM, Command.DATA_SM):
            self._on_request(self, pdu)
        else:
            self.respond(pdu, Empty(Command.GENERIC_NACK), Status.ESME_RINVCMDID)

    def _answer(self, frame: bytes, sequence: int) -> None:
        entry = self._pending.pop(sequence, None)
        if entry is None:
            log.warning("%s: a response to no outstanding request (#%d)", self.name, sequence)
            return
        future, timer = entry
        timer.cancel()
        if future.done():
            return
        try:
            future.set_result(decode(frame))
        except PduError as exc:
            future.set_exception(exc)


def message_id_of(answer: Pdu) -> str:
    body = answer.body
    return body.message_id if isinstance(body, MessageIdResp) else ""
