"""The SMPP connector: a carrier's SMSC behind the one-method connector protocol.

`send()` turns a message into submit_sm parts (:mod:`.text`), submits them on the
least busy bound connection and answers with a typed outcome:

- every part taken → :class:`Accepted` with a :class:`Handover` naming the SMSC's
  ids of the parts, which the dispatcher stores with the move to `processing`;
- ESME_RTHROTTLED / ESME_RMSGQFUL, no bound connection, or a connection lost with
  submits unanswered → :class:`Failed` with `retry_after`: the message waits and
  keeps its attempts;
- other transient statuses, or no answer in time → retryable :class:`Failed`;
- a permanent status (invalid destination, …) → :class:`Failed`, not retryable:
  the channel is `undeliverable`.

Only submits that had no answer are sent again: a message whose first parts were
taken resumes with the parts left (in this process), and each re-sent submit is
counted (`batgate_smpp_resends`).

Receipts from any connection are parsed (:mod:`.receipts`), queued, stored in
batches through the :class:`ReceiptSink`, and acknowledged only once stored (a
failed store answers ESME_RX_T_APPN, so the SMSC sends them again later).

Mobile-originated messages (deliver_sm / data_sm that are not receipts) are read
and put together from their parts (:mod:`.mo`), and stored in batches through the
:class:`InboundSink` the same way. Every part's PDU is answered once the whole
message is stored, so the SMSC keeps (and sends again) any part of a message not
yet safe; a message whose parts stop coming is stored as far as it came after
`mo_reassembly_timeout`, and then its parts are answered.

Each of `connections` links binds, and re-binds with exponential backoff when its
connection fails; `aclose()` unbinds them after the receipts and messages in hand
are stored (messages still missing parts are stored as they are, incomplete).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from batgate.channels.base import InboundSink, Outbound, ReceiptSink
from batgate.channels.smpp import text as smpp_text
from batgate.channels.smpp.mo import Assembled, Reassembler, read_mo
from batgate.channels.smpp.pdu import (
    Command,
    DataSm,
    MessageIdResp,
    Pdu,
    PduError,
    ShortMessage,
    Status,
    status_name,
)
from batgate.channels.smpp.receipts import IdSpelling, channel_status, is_receipt, read_receipt
from batgate.channels.smpp.session import (
    BindRefused,
    LinkClosed,
    NoAnswer,
    NotSent,
    Session,
    SessionSettings,
    message_id_of,
)
from batgate.config import SmppSettings
from batgate.domain.checks import is_digits
from batgate.domain.messages import Step
from batgate.domain.outcomes import (
    Accepted,
    CarrierId,
    Failed,
    Handover,
    PartReceipt,
    ScheduledReceipt,
    SendResult,
)
from batgate.domain.status import ChannelStatus
from batgate.observability import metrics

log = logging.getLogger(__name__)

# The SMSC is busy: try again shortly, it is not the message's fault.
THROTTLED = frozenset({Status.ESME_RTHROTTLED, Status.ESME_RMSGQFUL})
# The message itself is wrong for this SMSC: sending it again cannot help.
PERMANENT = frozenset(
    {
        Status.ESME_RINVMSGLEN,
        Status.ESME_RINVCMDLEN,
        Status.ESME_RINVCMDID,
        Status.ESME_RINVPRTFLG,
        Status.ESME_RINVREGDLVFLG,
        Status.ESME_RINVSRCADR,
        Status.ESME_RINVDSTADR,
        Status.ESME_RINVSERTYP,
        Status.ESME_RINVESMCLASS,
        Status.ESME_RINVSRCTON,
        Status.ESME_RINVSRCNPI,
        Status.ESME_RINVDSTTON,
        Status.ESME_RINVDSTNPI,
        Status.ESME_RINVSCHED,
        Status.ESME_RINVEXPIRY,
        Status.ESME_RINVDFTMSGID,
        Status.ESME_RX_P_APPN,
        Status.ESME_RX_R_APPN,
        Status.ESME_RINVOPTPARSTREAM,
        Status.ESME_ROPTPARNOTALLWD,
        Status.ESME_RINVPARLEN,
        Status.ESME_RMISSINGOPTPARAM,
        Status.ESME_RINVOPTPARAMVAL,
    }
)
_RECEIPT_BATCH = 500  # receipts, or inbound messages, stored in one call
_UNFINISHED_KEPT = 10_000  # messages remembered with parts taken or unanswered


@dataclass(slots=True)
class _Unfinished:
    """A message not wholly taken: its parts' reference, the parts taken (index → SMSC
    id) and those that had no answer (sent again next time, and counted)."""

    reference: int
    taken: dict[int, str] = field(default_factory=dict)
    unanswered: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Inbound:
    receipt: PartReceipt
    session: Session
    pdu: Pdu


@dataclass(frozen=True, slots=True)
class _Held:
    """A PDU of a mobile-originated message's part, answered once the message is stored."""

    session: Session
    pdu: Pdu


class SmppDesk(ReceiptSink, InboundSink, Protocol):
    """What the SMPP connector hands over: receipts, and messages from phones."""


@dataclass(slots=True)
class _Link:
    """One of the connector's connections: where it sends, and where receipts come."""

    index: int
    transmitter: Session | None = None
    receiver: Session | None = None
    task: asyncio.Task[None] | None = None


class SmppConnector:
    def __init__(
        self,
        name: str,
        settings: SmppSettings,
        receipts: SmppDesk,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._settings = settings
        self._sink = receipts
        self._clock = clock
        self._spelling = IdSpelling(settings.receipt_ids)
        self._links = [_Link(i) for i in range(settings.connections)]
        self._up = asyncio.Event()
        self._closing = False
        self.down_reason = "not connected yet"
        self._reference = random.randrange(65536)
        self._unfinished: OrderedDict[tuple[str, str], _Unfinished] = OrderedDict()
        self._inbox: list[_Inbound] = []
        self._inbox_ready = asyncio.Event()
        self._storing = False
        self._writer: asyncio.Task[None] | None = None
        # Monotonic: a wall clock set back must not hold parts, nor set forward expire them.
        self._parts: Reassembler[_Held] = Reassembler(
            settings.mo_reassembly_timeout, settings.mo_pending_max, time.monotonic
        )
        self._messages: list[Assembled[_Held]] = []  # whole (or timed out), to store
        self._parts_waiting = asyncio.Event()  # the reassembler was empty and is not
        self._expiry: asyncio.Task[None] | None = None
        self.resends = 0
        self._bound_gauge = metrics.smpp_bound(name)
        self._resend_counter = metrics.smpp_resends(name)
        self._complete_counter = metrics.smpp_inbound_messages(name, "complete")
        self._incomplete_counter = metrics.smpp_inbound_messages(name, "incomplete")

    # -- life ------------------------------------------------------------------------

    async def start(self, wait: float = 2.0) -> None:
        """Start binding every link; wait up to `wait` seconds for each to bind or fail once."""
        self._writer = asyncio.create_task(self._store_inbound(), name=f"{self.name} inbound")
        self._expiry = asyncio.create_task(self._expire_parts(), name=f"{self.name} parts")
        tried = [asyncio.get_running_loop().create_future() for _ in self._links]
        for link, first in zip(self._links, tried, strict=True):
            link.task = asyncio.create_task(self._keep_link(link, first), name=f"{self.name} link")
        await asyncio.wait(tried, timeout=wait)
        if not self.bound_links:
            log.warning("connector %s: not bound (%s); sends wait", self.name, self.down_reason)

    async def aclose(self) -> None:
        """Store and acknowledge the receipts and messages in hand (those still missing
        parts as they are, incomplete), then unbind every link."""
        self._closing = True
        deadline = time.monotonic() + self._settings.unbind_timeout
        while self._in_hand and time.monotonic() < deadline:
            # Parts that come meanwhile too: their PDUs are answered before the unbind.
            self._queue_messages(self._parts.flush())
            await asyncio.sleep(0.01)
        sessions = {id(s): s for link in self._links for s in (link.transmitter, link.receiver)}
        timeout = max(0.1, deadline - time.monotonic())
        await asyncio.gather(
            *(s.unbind(timeout) for s in sessions.values() if s is not None),
            return_exceptions=True,
        )
        own = (self._writer, self._expiry)
        tasks = [t for t in (*(link.task for link in self._links), *own) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._bound_gauge.set(0)

    @property
    def _in_hand(self) -> bool:
        """Anything received and not yet stored and answered."""
        return bool(self._inbox or self._messages or self._parts or self._storing)

    @property
    def bound_links(self) -> int:
        return sum(1 for link in self._links if _usable(link))

    @property
    def assembling(self) -> int:
        """Inbound messages with parts in hand, waiting for the others (diagnostics)."""
        return len(self._parts)

    @property
    def transmitters(self) -> list[Session]:
        """The sessions the links send on now (their pacers, for diagnostics)."""
        return [link.transmitter for link in self._links if link.transmitter is not None]

    # -- sending -----------------------------------------------------------------------

    async def send(self, message: Outbound) -> SendResult:
        step = message.step
        if step.text is None:
            return Failed(
                f"{self.name}: a {step.type} message has no text to send over SMPP", False
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.submit_timeout
        key = (message.message_id, step.type.value)
        unfinished = self._unfinished.pop(key, None) or _Unfinished(self._next_reference())
        s = self._settings
        try:
            encoded = smpp_text.encode_text(
                step.text,
                alphabet=s.data_coding,
                split=s.split,
                packed=s.gsm7_packed,
                reference=unfinished.reference,
            )
        except ValueError as exc:
            return Failed(f"{self.name}: {exc}", retryable=False)
        session = await self._transmitter(deadline)
        if session is None:
            self._keep_unfinished(key, unfinished)
            return Failed(
                f"{self.name}: not bound to the SMSC ({self.down_reason})",
                retryable=True,
                retry_after=s.reconnect_delay,
            )
        for index, segment in enumerate(encoded.segments):
            if index in unfinished.taken:
                continue
            body = self._short_message(step, encoded.data_coding, segment)
            failure = await self._submit_part(session, body, index, unfinished, deadline)
            if failure is not None:
                if failure.retryable:
                    self._keep_unfinished(key, unfinished)
                if unfinished.taken or unfinished.unanswered:
                    # Parts of it are (or may be) at this SMSC: the rest goes here too.
                    return replace(failure, maybe_taken=True)
                return failure
        return self._accepted(unfinished, len(encoded.segments))

    async def _submit_part(
        self, session: Session, body: ShortMessage, index: int, u: _Unfinished, deadline: float
    ) -> Failed | None:
        """Submit one part; None when taken (recorded in `u`), else why not."""
        if index in u.unanswered:
            self.resends += 1
            self._resend_counter.inc()
        try:
            answer = await session.submit(body, deadline)
        except NotSent as exc:
            return Failed(str(exc), retryable=True, retry_after=self._settings.throttle_delay)
        except LinkClosed as exc:
            u.unanswered.add(index)
            metrics.smpp_submits(self.name, "no_answer").inc()
            return Failed(str(exc), retryable=True, retry_after=self._settings.reconnect_delay)
        except (NoAnswer, PduError) as exc:
            # An answer we cannot read is as good as none: the SMSC may have taken it.
            u.unanswered.add(index)
            metrics.smpp_submits(self.name, "no_answer").inc()
            return Failed(f"{self.name}: {exc}", retryable=True)
        u.unanswered.discard(index)
        status = answer.status
        if status == Status.ESME_ROK:
            metrics.smpp_submits(self.name, "ok").inc()
            u.taken[index] = message_id_of(answer)
            return None
        name = status_name(status)
        metrics.smpp_submits(self.name, name).inc()
        reason = f"{self.name}: the SMSC answered {name}"
        if status in THROTTLED:
            return Failed(reason, retryable=True, retry_after=self._settings.throttle_delay)
        return Failed(reason, retryable=status not in PERMANENT)

    def _accepted(self, u: _Unfinished, total: int) -> Accepted:
        ref = "smpp-" + os.urandom(8).hex()
        ids = [u.taken[i] for i in range(total)]
        if not self._settings.registered_delivery or not all(ids):
            if self._settings.registered_delivery:
                log.warning(
                    "connector %s: the SMSC gave no message id; no receipt can be matched, "
                    "so the message counts as delivered once the SMSC took it",
                    self.name,
                )
            return Accepted(ref, ScheduledReceipt(ChannelStatus.DELIVERED, self._clock()))
        parts = []
        for smsc_id in ids:
            part_key = self._spelling.part_key(smsc_id)
            parts.append(CarrierId(part_key, self._spelling.part_lookups(part_key)[1:]))
        return Accepted(ref, handover=Handover(self.name, tuple(parts)))

    def _short_message(self, step: Step, coding: int, segment: smpp_text.Segment) -> ShortMessage:
        s = self._settings
        source, source_ton, source_npi = _source_address(step.sender)
        if s.source_ton is not None:
            source_ton = s.source_ton
        if s.source_npi is not None:
            source_npi = s.source_npi
        return ShortMessage(
            Command.SUBMIT_SM,
            source_addr=source,
            destination_addr=step.to.removeprefix("+"),
            short_message=segment.short_message,
            service_type=s.service_type,
            source_addr_ton=source_ton,
            source_addr_npi=source_npi,
            dest_addr_ton=s.dest_ton,
            dest_addr_npi=s.dest_npi,
            esm_class=segment.esm_class,
            validity_period=relative_validity(step.ttl) if s.validity_period else "",
            registered_delivery=1 if s.registered_delivery else 0,
            data_coding=coding,
            tlvs=segment.tlvs,
        )

    def _next_reference(self) -> int:
        self._reference = (self._reference + 1) % 65536
        return self._reference

    def _keep_unfinished(self, key: tuple[str, str], unfinished: _Unfinished) -> None:
        self._unfinished[key] = unfinished
        while len(self._unfinished) > _UNFINISHED_KEPT:
            self._unfinished.popitem(last=False)

    async def _transmitter(self, deadline: float) -> Session | None:
        """The bound connection with the fewest submits outstanding; while links are
        (re)connecting, waits for one up to a second (or the deadline)."""
        usable = [link.transmitter for link in self._links if _usable(link)]
        if not usable and not self._closing:
            remaining = min(1.0, deadline - asyncio.get_running_loop().time())
            if remaining > 0:
                try:
                    # Not wait_for: on Python 3.11 it can drop a cancellation (see
                    # batgate.engine.dispatcher.Dispatcher._idle).
                    async with asyncio.timeout(remaining):
                        await self._up.wait()
                except TimeoutError:
                    return None
            usable = [link.transmitter for link in self._links if _usable(link)]
        sessions = [s for s in usable if s is not None]
        return min(sessions, key=lambda s: s.outstanding) if sessions else None

    # -- links -------------------------------------------------------------------------

    async def _keep_link(self, link: _Link, first: asyncio.Future[None]) -> None:
        s = self._settings
        delay = s.reconnect_delay
        while not self._closing:
            try:
                await self._open(link)
            except BindRefused as exc:
                self._link_failed(status_name(exc.status), f"{exc} — check system_id and password")
            except NoAnswer:
                self._link_failed("timeout", "no answer to the bind")
            except PduError as exc:
                self._link_failed("malformed", f"an unreadable answer to the bind: {exc}")
            except (OSError, TimeoutError) as exc:
                reason = "timeout" if isinstance(exc, TimeoutError) else "connect"
                self._link_failed(reason, f"cannot connect: {exc!r}")
            else:
                delay = s.reconnect_delay
                _settle(first)
                await self._while_bound(link)
                if self._closing:
                    return
            _settle(first)
            # Jitter, so that links (and workers) do not come back in lockstep.
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, s.reconnect_max_delay)

    async def _open(self, link: _Link) -> None:
        s = self._settings
        settings = SessionSettings(
            system_id=s.system_id,
            password=s.password,
            system_type=s.system_type,
            window=s.window,
            throughput=s.throughput,
            response_timeout=s.response_timeout,
            enquire_link_interval=s.enquire_link_interval,
            connect_timeout=s.connect_timeout,
        )
        name = f"{self.name}#{link.index}"

        async def bind(command: Command) -> Session:
            kind = replace(settings, bind=command)
            return await Session.open(s.host, s.port, kind, self._on_request, name)

        if s.bind == "transceiver":
            link.transmitter = link.receiver = await bind(Command.BIND_TRANSCEIVER)
        else:
            tx = await bind(Command.BIND_TRANSMITTER)
            try:
                rx = await bind(Command.BIND_RECEIVER)
            except BaseException:
                tx.abort()
                raise
            link.transmitter, link.receiver = tx, rx
        log.info("connector %s: link %d bound to %s:%d", self.name, link.index, s.host, s.port)
        self._changed()

    async def _while_bound(self, link: _Link) -> None:
        sessions = {id(x): x for x in (link.transmitter, link.receiver) if x is not None}
        waits = [asyncio.ensure_future(x.closed) for x in sessions.values()]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for session in sessions.values():
            session.abort()
        link.transmitter = link.receiver = None
        self._changed()
        if not self._closing:
            self.down_reason = "connection lost"
            log.warning("connector %s: link %d lost; binding again", self.name, link.index)

    def _link_failed(self, reason: str, detail: str) -> None:
        s = self._settings
        self.down_reason = f"{s.host}:{s.port}: {detail}"
        metrics.smpp_bind_failures(self.name, reason).inc()
        log.error("connector %s: %s", self.name, self.down_reason)

    def _changed(self) -> None:
        bound = self.bound_links
        self._bound_gauge.set(bound)
        if bound:
            self._up.set()
        else:
            self._up.clear()

    # -- receipts and messages from phones ---------------------------------------------

    def _on_request(self, session: Session, pdu: Pdu) -> None:
        body = pdu.body
        if not isinstance(body, ShortMessage | DataSm):  # the session hands over no other
            session.respond(pdu, MessageIdResp(pdu.command.response))
            return
        if not is_receipt(body):
            self._on_message_part(session, pdu, body)
            return
        answer = MessageIdResp(pdu.command.response)
        receipt = read_receipt(body)
        if receipt is None:  # a receipt that names no message: nothing to match it to
            metrics.smpp_inbound_other(self.name).inc()
            session.respond(pdu, answer)
            return
        metrics.smpp_receipts(self.name, receipt.state.name).inc()
        status = channel_status(receipt.state, self._settings.unknown_status)
        if status is None:
            session.respond(pdu, answer)  # on its way: nothing to store
            return
        lookups = self._spelling.lookups(receipt.message_id)
        part = CarrierId(lookups[0], lookups[1:])
        said = receipt.state.name + ("" if receipt.error is None else f" err:{receipt.error}")
        self._inbox.append(_Inbound(PartReceipt(part, status, f"SMSC: {said}"), session, pdu))
        self._inbox_ready.set()

    def _on_message_part(self, session: Session, pdu: Pdu, body: ShortMessage | DataSm) -> None:
        """Hold a mobile-originated part's PDU until its whole message is stored."""
        waited = bool(self._parts)
        self._queue_messages(self._parts.add(read_mo(body), _Held(session, pdu)))
        if not waited and self._parts:
            # Later deadlines never come before earlier ones: only an empty reassembler's
            # first message needs the expiry task woken.
            self._parts_waiting.set()

    def _queue_messages(self, done: list[Assembled[_Held]]) -> None:
        if not done:
            return
        for item in done:
            counter = (
                self._incomplete_counter if item.message.incomplete else self._complete_counter
            )
            counter.inc()
        self._messages.extend(done)
        self._inbox_ready.set()

    async def _expire_parts(self) -> None:
        """Give out, incomplete, the messages whose parts stopped coming: also when no
        other PDU comes that would have noticed."""
        while True:
            due = self._parts.next_deadline()
            if due is None:
                await self._parts_waiting.wait()
                self._parts_waiting.clear()
                continue
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            self._queue_messages(self._parts.expire())

    async def _store_inbound(self) -> None:
        """Store queued receipts and messages in batches; answer each batch's PDUs once
        it is stored (ESME_RX_T_APPN when it could not be: the SMSC sends them again)."""
        while True:
            await self._inbox_ready.wait()
            self._inbox_ready.clear()
            while self._inbox or self._messages:
                if self._inbox:
                    await self._store_receipts()
                if self._messages:
                    await self._store_messages()

    async def _store_receipts(self) -> None:
        batch = self._inbox[:_RECEIPT_BATCH]
        del self._inbox[:_RECEIPT_BATCH]
        receipts = [item.receipt for item in batch]
        status = await self._stored(
            lambda: self._sink.receipts(self.name, receipts), f"{len(batch)} receipts"
        )
        for item in batch:
            item.session.respond(item.pdu, MessageIdResp(item.pdu.command.response), status)

    async def _store_messages(self) -> None:
        batch = self._messages[:_RECEIPT_BATCH]
        del self._messages[:_RECEIPT_BATCH]
        messages = [item.message for item in batch]
        status = await self._stored(
            lambda: self._sink.inbound(self.name, messages), f"{len(batch)} inbound messages"
        )
        for item in batch:
            for held in item.tags:
                held.session.respond(held.pdu, MessageIdResp(held.pdu.command.response), status)

    async def _stored(self, store: Callable[[], Awaitable[None]], what: str) -> int:
        """Run one store; the status to answer its PDUs with."""
        self._storing = True
        try:
            await store()
        except Exception:
            log.exception(
                "connector %s: storing %s failed; asking the SMSC to send them again later",
                self.name,
                what,
            )
            return Status.ESME_RX_T_APPN
        finally:
            self._storing = False
        return Status.ESME_ROK


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _usable(link: _Link) -> bool:
    tx, rx = link.transmitter, link.receiver
    return tx is not None and rx is not None and tx.usable and rx.usable


def _source_address(sender: str) -> tuple[str, int, int]:
    """(address, TON, NPI) of a sender: international number, short code or alphanumeric."""
    digits = sender.removeprefix("+")
    if is_digits(digits):
        if sender.startswith("+") or len(digits) > 8:
            return digits, 1, 1  # international, E.164
        return digits, 3, 0  # a short code: network specific
    return sender, 5, 0  # alphanumeric


def relative_validity(ttl: int) -> str:
    """A TTL in seconds as SMPP's relative time, `YYMMDDhhmmss000R` (days capped at 99)."""
    days, rest = divmod(max(0, ttl), 86_400)
    if days > 99:
        days, rest = 99, 0
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{seconds:02d}000R"
