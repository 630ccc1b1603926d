"""The SMPP session and connector against a scripted SMSC: the protocol's edge cases.

The third-party peers (tests/peers) behave like well-mannered SMSCs; the cases here
need one that does exactly what a test says, byte for byte and write for write: a
tiny asyncio server in this file. Each test hands it a *script*, a table of
command id → what to do with that request (answer it, refuse it, ignore it); the PDUs
the script does not name are queued for the test body, which reads and answers them
itself. The SMSC's side is written with struct (and, for well-formed deliver_sm,
with batgate's codec, whose bytes are pinned by tests/unit/test_smpp_pdu.py).

Sessions are opened with `Session.open` directly; connector cases run an
`SmppConnector` with an in-memory receipt sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import Counter

import waiting
from batgate.channels.base import Outbound
from batgate.channels.smpp.connector import SmppConnector
from batgate.channels.smpp.pdu import (
    Command,
    DataSm,
    MessageIdResp,
    Pdu,
    PduError,
    ShortMessage,
    Tag,
    Tlv,
    decode,
    encode,
)
from batgate.channels.smpp.receipts import MessageState
from batgate.channels.smpp.session import (
    BindRefused,
    LinkClosed,
    NoAnswer,
    NotSent,
    Session,
    SessionError,
    SessionSettings,
    message_id_of,
)
from batgate.config import SmppSettings
from batgate.domain.inbound import InboundText
from batgate.domain.messages import MessageType, Step
from batgate.domain.outcomes import Accepted, Failed, PartReceipt
from batgate.domain.status import ChannelStatus
from batgate.observability import metrics
from waiting import bounded

HOST = "127.0.0.1"
HEADER = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence_number

# Command ids and statuses of SMPP 3.4, spelled out: the SMSC's side does not trust the codec's.
RESP = 0x80000000
GENERIC_NACK = 0x80000000
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
DATA_SM = 0x00000103

ESME_ROK = 0x00
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RX_T_APPN = 0x64
ESME_RINVOPTPARSTREAM = 0xC0
ESME_RINVPARLEN = 0xC2

# The longest any condition below may take to come true: only a failing test waits it
# out, so it is generous for a busy machine.
WAIT = 10.0
_names = itertools.count(1)


# -- the SMSC's bytes ---------------------------------------------------------------------


def frame(command_id: int, sequence: int, body: bytes = b"", status: int = ESME_ROK) -> bytes:
    return HEADER.pack(HEADER.size + len(body), command_id, status, sequence) + body


def cstr(text: str) -> bytes:
    return text.encode("latin-1") + b"\x00"


# submit_sm / deliver_sm body up to sm_length (SMPP 3.4 §4.4.1), written field by field.
SM_BODY = (
    cstr("")  # service_type
    + bytes((1, 1))
    + cstr("380501234567")  # source ton, npi, addr
    + bytes((5, 0))
    + cstr("Shop")  # dest ton, npi, addr
    + bytes((0, 0, 0))  # esm_class, protocol_id, priority_flag
    + cstr("")
    + cstr("")  # schedule_delivery_time, validity_period
    + bytes((0, 0, 0, 0, 2))  # registered_delivery, replace, data_coding, default id, sm_length
    + b"hi"
)
BIND_BODY = cstr("smsc") + cstr("pw") + cstr("") + bytes((0x34, 0, 0)) + cstr("")
DATA_SM_HEAD = cstr("") + bytes((1, 1)) + cstr("380501234567") + bytes((5, 0)) + cstr("Shop")


def receipt(message_id: str, state: MessageState = MessageState.DELIVERED) -> ShortMessage:
    """A deliver_sm receipt as most SMSCs write one: esm_class 0x04, TLVs and the text."""
    stat = {MessageState.DELIVERED: "DELIVRD", MessageState.ENROUTE: "ENROUTE"}.get(
        state, state.name[:7]
    )
    text = (
        f"id:{message_id} sub:001 dlvrd:001 submit date:2412061530 done date:2412061531 "
        f"stat:{stat} err:000 text:Order #1001"
    )
    return ShortMessage(
        Command.DELIVER_SM,
        source_addr="380501234567",
        destination_addr="Shop",
        short_message=text.encode(),
        esm_class=0x04,
        tlvs=(
            Tlv.cstring(Tag.RECEIPTED_MESSAGE_ID, message_id),
            Tlv.integer(Tag.MESSAGE_STATE, state, 1),
        ),
    )


def request(body: ShortMessage | DataSm, sequence: int) -> bytes:
    return encode(Pdu(body, sequence))


# -- the scripted SMSC ------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A PDU the SMSC got, as it came, and when (loop time)."""

    command_id: int
    status: int
    sequence: int
    body: bytes
    at: float


Responder = Callable[["Conn", Raw], Awaitable[None]]
Script = Mapping[int, Responder]


class Conn:
    """One connection the SMSC accepted: every PDU it got, those left for the test body."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: Script
    ) -> None:
        self.reader, self.writer, self.script = reader, writer, script
        self.received: list[Raw] = []
        self.inbox: asyncio.Queue[Raw] = asyncio.Queue()
        self.ended = asyncio.Event()  # the client closed the connection

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                header = await self.reader.readexactly(HEADER.size)
                length, command_id, status, sequence = HEADER.unpack(header)
                body = await self.reader.readexactly(length - HEADER.size)
                pdu = Raw(command_id, status, sequence, body, loop.time())
                self.received.append(pdu)
                responder = self.script.get(command_id)
                if responder is None:
                    self.inbox.put_nowait(pdu)
                else:
                    await responder(self, pdu)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.ended.set()

    def write(self, *frames: bytes) -> None:
        """The frames in ONE write (so in one TCP segment on the loopback)."""
        self.writer.write(b"".join(frames))

    async def write_split(self, data: bytes, size: int) -> None:
        """`data` in writes of `size` octets, letting the client read each on its own."""
        for start in range(0, len(data), size):
            self.writer.write(data[start : start + size])
            await self.writer.drain()
            await asyncio.sleep(0.001)

    async def next(self, timeout: float = WAIT) -> Raw:
        """The next PDU the script did not handle."""
        return await bounded(self.inbox.get(), "the next PDU from batgate", timeout)

    async def nothing_for(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert self.inbox.empty(), f"unexpected: {self.inbox.get_nowait()}"

    def count(self, command_id: int) -> int:
        return sum(1 for pdu in self.received if pdu.command_id == command_id)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class Smsc:
    """`async with Smsc(script) as smsc`: listening on 127.0.0.1, `smsc.port`."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.conns: list[Conn] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> Smsc:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self.conns:
            await conn.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        conn = Conn(reader, writer, self.script)
        self.conns.append(conn)
        await conn.serve()

    async def connection(self, index: int = 0) -> Conn:
        await until(lambda: len(self.conns) > index, f"connection #{index}")
        return self.conns[index]

    def count(self, command_id: int) -> int:
        return sum(conn.count(command_id) for conn in self.conns)


# What a script may do with a request: the decisions each test spells out.


async def bind_ok(conn: Conn, pdu: Raw) -> None:
    conn.write(frame(pdu.command_id | RESP, pdu.sequence, cstr("scripted")))


def refuse_bind(status: int) -> Responder:
    async def refuse(conn: Conn, pdu: Raw) -> None:
        conn.write(frame(pdu.command_id | RESP, pdu.sequence, status=status))  # no body

    return refuse


def bind_ok_split(size: int) -> Responder:
    async def answer(conn: Conn, pdu: Raw) -> None:
        await conn.write_split(frame(pdu.command_id | RESP, pdu.sequence, cstr("scripted")), size)

    return answer


async def ignore(conn: Conn, pdu: Raw) -> None:
    """Taken in, never answered."""


async def enquire_link_ok(conn: Conn, pdu: Raw) -> None:
    conn.write(frame(ENQUIRE_LINK_RESP, pdu.sequence))


async def unbind_ok(conn: Conn, pdu: Raw) -> None:
    conn.write(frame(UNBIND_RESP, pdu.sequence))


BINDS: Script = {BIND_TRANSCEIVER: bind_ok}
# What a connector's SMSC does unless a test says otherwise: binds, keeps alive, unbinds.
SERVES: Script = {BIND_TRANSCEIVER: bind_ok, ENQUIRE_LINK: enquire_link_ok, UNBIND: unbind_ok}


# -- batgate's side -----------------------------------------------------------------------


async def until(ready: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    await waiting.until(ready, bool, what, timeout, interval=0.005)


def asyncio_time() -> float:
    return asyncio.get_running_loop().time()


class Requests:
    """The session's handler of deliver_sm / data_sm: keeps them and answers ESME_ROK."""

    def __init__(self) -> None:
        self.pdus: list[Pdu] = []

    def __call__(self, session: Session, pdu: Pdu) -> None:
        self.pdus.append(pdu)
        session.respond(pdu, MessageIdResp(pdu.command.response))


class CountingSession(Session):
    """A Session that notes the size of every read, to show how the bytes came."""

    def __init__(
        self, settings: SessionSettings, on_request: Callable[[Session, Pdu], None], name: str
    ) -> None:
        super().__init__(settings, on_request, name)
        self.reads: list[int] = []

    def data_received(self, data: bytes) -> None:
        self.reads.append(len(data))
        super().data_received(data)


def session_settings(**overrides: Any) -> SessionSettings:
    base: dict[str, Any] = {
        "system_id": "batgate",
        "password": "secret",
        "response_timeout": 1.0,
        "enquire_link_interval": 30.0,
        "connect_timeout": 1.0,
    }
    return SessionSettings(**(base | overrides))


@asynccontextmanager
async def session_to(
    smsc: Smsc,
    on_request: Callable[[Session, Pdu], None] | None = None,
    kind: type[Session] = Session,
    **overrides: Any,
) -> AsyncIterator[Session]:
    handler = on_request if on_request is not None else Requests()
    settings = session_settings(**overrides)
    session = await kind.open(HOST, smsc.port, settings, handler, "scripted")
    try:
        yield session
    finally:
        session.close()
        await bounded(asyncio.shield(session.closed), "asyncio.shield(session.closed)", WAIT)


class Sink:
    """An in-memory ReceiptSink (and InboundSink: it keeps inbound messages too);
    `gate` (when given) holds every call until it is set."""

    def __init__(self, gate: asyncio.Event | None = None, error: Exception | None = None) -> None:
        self.gate, self.error = gate, error
        self.calls: list[list[PartReceipt]] = []
        self.stored: list[PartReceipt] = []
        self.inbound_stored: list[InboundText] = []
        self.entered = asyncio.Event()

    async def receipts(self, connector: str, receipts: Sequence[PartReceipt]) -> None:
        self.calls.append(list(receipts))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        self.stored.extend(receipts)

    async def inbound(self, connector: str, messages: Sequence[InboundText]) -> None:
        self.inbound_stored.extend(messages)


def connector_settings(smsc: Smsc, **overrides: Any) -> SmppSettings:
    base: dict[str, Any] = {
        "kind": "smpp",
        "host": HOST,
        "port": smsc.port,
        "system_id": "batgate",
        "password": "secret",
        "reconnect_delay": 0.05,
        "reconnect_max_delay": 0.2,
        "connect_timeout": 1.0,
        "response_timeout": 1.0,
        "submit_timeout": 2.0,
        "unbind_timeout": 1.0,
    }
    return SmppSettings.model_validate(base | overrides)


@asynccontextmanager
async def connector_to(smsc: Smsc, sink: Sink, **overrides: Any) -> AsyncIterator[SmppConnector]:
    connector = SmppConnector(
        f"scripted{next(_names)}", connector_settings(smsc, **overrides), sink
    )
    await connector.start(wait=WAIT)
    try:
        assert connector.bound_links == 1, connector.down_reason
        yield connector
    finally:
        await connector.aclose()


def outbound(text: str = "Order #1001 confirmed") -> Outbound:
    step = Step(MessageType.SMS, "+380501234567", "Shop", text, None, 3600, 1)
    return Outbound(f"m{next(_names)}", step, 1)


def submit_body(text: str = "hello") -> ShortMessage:
    return ShortMessage(Command.SUBMIT_SM, "Shop", "380501234567", text.encode())


def counted(metric: Counter, **labels: str) -> float:
    """A counter's value for `labels` (0 when it was never counted)."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels == labels:
                return float(sample.value)
    return 0.0


def head(pdu: Raw) -> tuple[int, int, int]:
    return pdu.command_id, pdu.status, pdu.sequence


# -- 1. keepalive ---------------------------------------------------------------------------

KEEPALIVE = [
    # (id, what the SMSC does with enquire_link, the session stays up)
    ("answered: the session stays up", enquire_link_ok, True),
    ("never answered: the session closes itself", ignore, False),
]


@pytest.mark.parametrize(
    ("answer", "stays_up"), [c[1:] for c in KEEPALIVE], ids=[c[0] for c in KEEPALIVE]
)
async def test_keepalive(answer: Responder, stays_up: bool) -> None:
    loop = asyncio.get_running_loop()
    script = {BIND_TRANSCEIVER: bind_ok, ENQUIRE_LINK: answer}
    async with (
        Smsc(script) as smsc,
        session_to(smsc, enquire_link_interval=0.2, response_timeout=0.3) as session,
    ):
        bound_at = loop.time()
        conn = await smsc.connection()
        if stays_up:
            await until(lambda: conn.count(ENQUIRE_LINK) >= 2, "two enquire_link")
            assert session.usable and not session.closed.done()
        else:
            await bounded(asyncio.shield(session.closed), "asyncio.shield(session.closed)", WAIT)
            # Idle for the interval, then no answer within the response timeout. Only the
            # lower bound is checked: a busy machine makes it later, never earlier.
            elapsed = loop.time() - bound_at
            assert elapsed >= 0.2 + 0.3 - 0.05, elapsed
            assert conn.count(ENQUIRE_LINK) == 1
            await bounded(conn.ended.wait(), "conn.ended.wait()", WAIT)
            assert not session.usable
        links = [p for p in conn.received if p.command_id == ENQUIRE_LINK]
        assert links[0].at - bound_at >= 0.15  # only after idling for the interval
        assert len({p.sequence for p in links}) == len(links)


# -- 2. and 4. requests from the SMSC ------------------------------------------------------

REQUESTS = [
    # (id, the request's bytes (sequence 77), the answer's command id and status)
    ("enquire_link", frame(ENQUIRE_LINK, 77), ENQUIRE_LINK_RESP, ESME_ROK),
    ("unknown command 0x00000099", frame(0x99, 77, b"\x01\x02"), GENERIC_NACK, ESME_RINVCMDID),
    ("unknown command, no body", frame(0x99, 77), GENERIC_NACK, ESME_RINVCMDID),
    ("submit_sm sent by the SMSC", frame(SUBMIT_SM, 77, SM_BODY), GENERIC_NACK, ESME_RINVCMDID),
    ("bind sent by the SMSC", frame(BIND_TRANSMITTER, 77, BIND_BODY), GENERIC_NACK, ESME_RINVCMDID),
    (
        "deliver_sm cut short",
        frame(DELIVER_SM, 77, cstr("") + bytes((1, 1)) + cstr("380501234567")),
        GENERIC_NACK,
        ESME_RINVCMDLEN,
    ),
    (
        "deliver_sm whose sm_length runs past the PDU",
        frame(DELIVER_SM, 77, SM_BODY[:-3] + bytes((200,)) + b"hi"),
        GENERIC_NACK,
        ESME_RINVCMDLEN,
    ),
    (
        "deliver_sm with a TLV running past the PDU",
        frame(DELIVER_SM, 77, SM_BODY + b"\x00\x1e\x00\x10abc\x00"),
        GENERIC_NACK,
        ESME_RINVPARLEN,
    ),
    (
        "deliver_sm with a TLV header cut short",
        frame(DELIVER_SM, 77, SM_BODY + b"\x00\x1e"),
        GENERIC_NACK,
        ESME_RINVOPTPARSTREAM,
    ),
    ("data_sm cut short", frame(DATA_SM, 77, DATA_SM_HEAD), GENERIC_NACK, ESME_RINVCMDLEN),
]


@pytest.mark.parametrize(
    ("wire", "command_id", "status"), [c[1:] for c in REQUESTS], ids=[c[0] for c in REQUESTS]
)
async def test_requests_from_the_smsc_are_answered(
    wire: bytes, command_id: int, status: int
) -> None:
    try:
        decode(wire)
    except PduError as exc:
        assert exc.status == status  # what the decoder says is what goes back
    handler = Requests()
    async with Smsc(BINDS) as smsc, session_to(smsc, handler) as session:
        conn = await smsc.connection()
        conn.write(wire)
        answer = await conn.next()
        assert head(answer) == (command_id, status, 77)
        assert answer.body == b""
        await conn.nothing_for(0.05)
        assert session.usable
        assert handler.pdus == []  # none of these is the owner's business


# -- 3. the SMSC unbinds --------------------------------------------------------------------


async def test_the_smscs_unbind_is_answered_and_the_session_closes() -> None:
    async with Smsc(BINDS) as smsc, session_to(smsc) as session:
        conn = await smsc.connection()
        conn.write(frame(UNBIND, 5))
        assert head(await conn.next()) == (UNBIND_RESP, ESME_ROK, 5)
        await bounded(conn.ended.wait(), "conn.ended.wait()", WAIT)  # the session hung up
        await bounded(asyncio.shield(session.closed), "asyncio.shield(session.closed)", WAIT)
        assert not session.bound and not session.usable


async def test_after_the_smscs_unbind_the_connector_binds_again() -> None:
    async with Smsc(SERVES) as smsc, connector_to(smsc, Sink()) as connector:
        first = await smsc.connection(0)
        first.write(frame(UNBIND, 5))
        assert head(await first.next()) == (UNBIND_RESP, ESME_ROK, 5)
        await bounded(first.ended.wait(), "first.ended.wait()", WAIT)
        await smsc.connection(1)
        await until(lambda: connector.bound_links == 1, "bound again")
        assert smsc.count(BIND_TRANSCEIVER) == 2
        assert [c.count(BIND_TRANSCEIVER) for c in smsc.conns] == [1, 1]


# -- 5. a submit_sm_resp and a receipt in one write ---------------------------------------

ONE_WRITE = [
    ("submit_sm_resp, then the receipt", False),
    ("the receipt, then the submit_sm_resp", True),
]


@pytest.mark.parametrize("receipt_first", [c[1] for c in ONE_WRITE], ids=[c[0] for c in ONE_WRITE])
async def test_resp_and_receipt_in_one_write(receipt_first: bool) -> None:
    sink = Sink()
    async with Smsc(SERVES) as smsc, connector_to(smsc, sink) as connector:
        sending = asyncio.create_task(connector.send(outbound()))
        conn = await smsc.connection()
        submit = await conn.next()
        assert submit.command_id == SUBMIT_SM
        resp = frame(SUBMIT_SM_RESP, submit.sequence, cstr("1A2B3C"))
        dlr = request(receipt("1A2B3C"), 40)
        conn.write(*((dlr, resp) if receipt_first else (resp, dlr)))
        result = await bounded(sending, "sending", WAIT)
        assert head(await conn.next()) == (DELIVER_SM_RESP, ESME_ROK, 40)
    assert isinstance(result, Accepted)
    assert result.handover is not None
    assert [p.key for p in result.handover.parts] == ["1a2b3c"]
    assert [(r.part.key, r.status) for r in sink.stored] == [("1a2b3c", ChannelStatus.DELIVERED)]


# -- 6. PDUs split across many writes -----------------------------------------------------

SPLITS = [("1 octet a write", 1), ("3 octets a write", 3), ("7 octets a write", 7)]


@pytest.mark.parametrize("size", [c[1] for c in SPLITS], ids=[c[0] for c in SPLITS])
async def test_pdus_split_across_writes_are_reassembled(size: int) -> None:
    handler = Requests()
    script = {BIND_TRANSCEIVER: bind_ok_split(size)}
    async with Smsc(script) as smsc, session_to(smsc, handler, CountingSession) as session:
        assert isinstance(session, CountingSession)
        conn = await smsc.connection()
        submitting = asyncio.create_task(session.submit(submit_body(), asyncio_time() + WAIT))
        submit = await conn.next()
        resp = frame(SUBMIT_SM_RESP, submit.sequence, cstr("abc-001"))
        dlr = request(receipt("abc-001"), 41)
        await conn.write_split(resp + dlr, size)
        answer = await bounded(submitting, "submitting", WAIT)
        assert (answer.command, answer.status, message_id_of(answer)) == (
            Command.SUBMIT_SM_RESP,
            ESME_ROK,
            "abc-001",
        )
        assert head(await conn.next()) == (DELIVER_SM_RESP, ESME_ROK, 41)
        [delivered] = handler.pdus
        assert delivered.body == receipt("abc-001")
        total = len(frame(BIND_TRANSCEIVER_RESP, 1, cstr("scripted"))) + len(resp) + len(dlr)
        assert sum(session.reads) == total
        assert max(session.reads) <= 2 * size  # it really came in pieces
        assert len(session.reads) >= total // (2 * size)


# -- 7. a response nobody waits for ----------------------------------------------------------

STRAY = [
    ("submit_sm_resp to #999", frame(SUBMIT_SM_RESP, 999, cstr("x1"))),
    ("enquire_link_resp to #1000", frame(ENQUIRE_LINK_RESP, 1000)),
    ("generic_nack to #1001", frame(GENERIC_NACK, 1001, status=ESME_RINVCMDID)),
    ("unknown response 0x80000099", frame(0x80000099, 1002, b"\x01")),
    ("undecodable submit_sm_resp", frame(SUBMIT_SM_RESP, 1003, b"no NUL")),
]


@pytest.mark.parametrize("stray", [c[1] for c in STRAY], ids=[c[0] for c in STRAY])
async def test_a_response_nobody_waits_for_is_ignored(stray: bytes) -> None:
    async with Smsc(BINDS) as smsc, session_to(smsc) as session:
        conn = await smsc.connection()
        conn.write(stray)
        await conn.nothing_for(0.05)  # nothing answers a response
        assert session.usable
        # …and the session goes on: a submit after it gets its own answer.
        submitting = asyncio.create_task(session.submit(submit_body(), asyncio_time() + WAIT))
        submit = await conn.next()
        conn.write(frame(SUBMIT_SM_RESP, submit.sequence, cstr("ok-1")))
        assert message_id_of(await bounded(submitting, "submitting", WAIT)) == "ok-1"


async def test_an_answer_after_the_timeout_is_ignored() -> None:
    async with Smsc(BINDS) as smsc, session_to(smsc, response_timeout=0.2) as session:
        conn = await smsc.connection()
        with pytest.raises(NoAnswer):
            await session.submit(submit_body(), asyncio_time() + WAIT)
        late = await conn.next()
        conn.write(frame(SUBMIT_SM_RESP, late.sequence, cstr("late-1")))  # too late
        submitting = asyncio.create_task(session.submit(submit_body(), asyncio_time() + WAIT))
        submit = await conn.next()
        assert submit.sequence != late.sequence
        conn.write(frame(SUBMIT_SM_RESP, submit.sequence, cstr("ok-2")))
        assert message_id_of(await bounded(submitting, "submitting", WAIT)) == "ok-2"
        assert session.usable


# -- 8. binds ------------------------------------------------------------------------------

BIND_OUTCOMES = [
    # (id, what the SMSC does with the bind, the error, its status)
    ("refused ESME_RINVPASWD", refuse_bind(ESME_RINVPASWD), BindRefused, ESME_RINVPASWD),
    ("refused ESME_RINVSYSID", refuse_bind(ESME_RINVSYSID), BindRefused, ESME_RINVSYSID),
    ("answered with generic_nack", None, BindRefused, ESME_RINVCMDID),
    ("never answered", ignore, NoAnswer, None),
]


async def nack_bind(conn: Conn, pdu: Raw) -> None:
    conn.write(frame(GENERIC_NACK, pdu.sequence, status=ESME_RINVCMDID))


@pytest.mark.parametrize(
    ("answer", "error", "status"),
    [c[1:] for c in BIND_OUTCOMES],
    ids=[c[0] for c in BIND_OUTCOMES],
)
async def test_bind_fails(
    answer: Responder | None, error: type[Exception], status: int | None
) -> None:
    loop = asyncio.get_running_loop()
    async with Smsc({BIND_TRANSCEIVER: answer or nack_bind}) as smsc:
        started = loop.time()
        with pytest.raises(error) as failed:
            await Session.open(
                HOST, smsc.port, session_settings(response_timeout=0.3), Requests(), "x"
            )
        elapsed = loop.time() - started
        conn = await smsc.connection()
        await bounded(conn.ended.wait(), "conn.ended.wait()", WAIT)  # the failed session hung up
    assert conn.count(BIND_TRANSCEIVER) == 1
    if isinstance(failed.value, BindRefused):
        assert failed.value.status == status
    else:
        assert elapsed >= 0.3 - 0.02, elapsed  # it waited out the response timeout


MALFORMED_BIND_RESPS = [
    # (id, the body of a bind_transceiver_resp with status ESME_ROK)
    ("system_id of 20 octets, no NUL", b"X" * 20),
    ("a TLV header cut short", cstr("scripted") + b"\x02"),
]


@pytest.mark.parametrize(
    "body", [c[1] for c in MALFORMED_BIND_RESPS], ids=[c[0] for c in MALFORMED_BIND_RESPS]
)
async def test_a_malformed_bind_resp_is_a_failed_bind_and_the_connector_tries_again(
    body: bytes,
) -> None:
    async def malformed_then_ok(conn: Conn, pdu: Raw) -> None:
        first = len(smsc.conns) == 1
        conn.write(frame(pdu.command_id | RESP, pdu.sequence, body if first else cstr("ok")))

    script = {BIND_TRANSCEIVER: malformed_then_ok, ENQUIRE_LINK: enquire_link_ok, UNBIND: unbind_ok}
    async with Smsc(script) as smsc:
        connector = SmppConnector(f"scripted{next(_names)}", connector_settings(smsc), Sink())
        try:
            await connector.start(wait=0.3)
            await until(lambda: connector.bound_links == 1, "bound at the second try", 0.5)
            assert smsc.count(BIND_TRANSCEIVER) == 2
        finally:
            await connector.aclose()


# -- 9. the window --------------------------------------------------------------------------

WINDOW = [
    # (id, deadline of the two submits beyond the window (s), they fail with NotSent)
    ("long deadline: they wait for a slot", WAIT, False),
    ("short deadline: NotSent, nothing sent", 0.2, True),
]


@pytest.mark.parametrize(
    ("late_deadline", "window_full"), [c[1:] for c in WINDOW], ids=[c[0] for c in WINDOW]
)
async def test_the_window(late_deadline: float, window_full: bool) -> None:
    async with (
        Smsc(BINDS) as smsc,
        session_to(smsc, window=3, response_timeout=WAIT) as session,
    ):
        conn = await smsc.connection()
        now = asyncio_time()
        first = [asyncio.create_task(session.submit(submit_body(), now + WAIT)) for _ in range(3)]
        await until(lambda: conn.count(SUBMIT_SM) == 3, "three submits")
        late = [
            asyncio.create_task(session.submit(submit_body(), now + late_deadline))
            for _ in range(2)
        ]
        await asyncio.sleep(0.3)  # past the short deadline
        assert conn.count(SUBMIT_SM) == 3  # the server never answered: the window is full
        if window_full:
            for task in late:
                with pytest.raises(NotSent):
                    await task
            assert session.outstanding == 3
        else:
            assert not any(task.done() for task in late)
            assert session.outstanding == 5
        # The server answers the first three: slots free up.
        for _ in range(3):
            submit = await conn.next()
            conn.write(frame(SUBMIT_SM_RESP, submit.sequence, cstr(f"id{submit.sequence}")))
        answers = await bounded(asyncio.gather(*first), "asyncio.gather(*first)", WAIT)
        assert [a.status for a in answers] == [ESME_ROK] * 3
        if not window_full:
            for _ in range(2):
                submit = await conn.next()
                conn.write(frame(SUBMIT_SM_RESP, submit.sequence, cstr("late")))
            answers = await bounded(asyncio.gather(*late), "asyncio.gather(*late)", WAIT)
            assert [message_id_of(a) for a in answers] == ["late", "late"]
        await conn.nothing_for(0.05)
        assert conn.count(SUBMIT_SM) == (3 if window_full else 5)
        assert session.outstanding == 0


LATE_SUBMITS = [
    # (id, throughput, submits at once, their deadline from now (s), submits that may leave)
    ("its throughput slot comes after the deadline", 5.0, 2, 0.1, 1),
    ("the deadline has passed already", 0.0, 1, -0.1, 0),
]


@pytest.mark.parametrize(
    ("throughput", "submits", "deadline", "sent"),
    [c[1:] for c in LATE_SUBMITS],
    ids=[c[0] for c in LATE_SUBMITS],
)
async def test_a_submit_is_not_sent_after_its_deadline(
    throughput: float, submits: int, deadline: float, sent: int
) -> None:
    script = {BIND_TRANSCEIVER: bind_ok, SUBMIT_SM: ignore}
    async with Smsc(script) as smsc, session_to(smsc, throughput=throughput) as session:
        conn = await smsc.connection()
        at = asyncio_time() + deadline
        tries = [session.submit(submit_body(), at) for _ in range(submits)]
        outcomes = await bounded(
            asyncio.gather(*tries, return_exceptions=True),
            "asyncio.gather(*tries, return_exceptions=True)",
            WAIT,
        )
        assert all(isinstance(o, SessionError) for o in outcomes), outcomes
        await asyncio.sleep(0.05)
        assert conn.count(SUBMIT_SM) == sent


# -- 10. the SMSC hangs up with submits outstanding -----------------------------------------

HANG_UPS = [
    ("closed", b""),
    ("closed in the middle of a response", frame(SUBMIT_SM_RESP, 1, cstr("x"))[:9]),
]


@pytest.mark.parametrize("last_words", [c[1] for c in HANG_UPS], ids=[c[0] for c in HANG_UPS])
async def test_a_hang_up_fails_the_outstanding_submits(last_words: bytes) -> None:
    async with Smsc(BINDS) as smsc, session_to(smsc) as session:
        conn = await smsc.connection()
        submits = [
            asyncio.create_task(session.submit(submit_body(), asyncio_time() + WAIT))
            for _ in range(2)
        ]
        await until(lambda: conn.count(SUBMIT_SM) == 2, "two submits")
        conn.write(last_words)
        await conn.close()
        for task in submits:
            with pytest.raises(LinkClosed):
                await bounded(task, "task", WAIT)
        await bounded(asyncio.shield(session.closed), "asyncio.shield(session.closed)", WAIT)
        assert not session.usable and session.outstanding == 0
        with pytest.raises(LinkClosed):
            await session.submit(submit_body(), asyncio_time() + WAIT)


async def test_a_hang_up_is_a_failure_to_retry_for_the_connector() -> None:
    async with Smsc(SERVES) as smsc, connector_to(smsc, Sink()) as connector:
        sending = asyncio.create_task(connector.send(outbound()))
        conn = await smsc.connection()
        assert (await conn.next()).command_id == SUBMIT_SM
        await conn.close()
        result = await bounded(sending, "sending", WAIT)
        assert isinstance(result, Failed)
        assert result.retryable and result.retry_after == 0.05
        await smsc.connection(1)  # …and it binds again
        await until(lambda: connector.bound_links == 1, "bound again")


UNDECODABLE_RESPS = [
    ("an empty submit_sm_resp", b""),
    ("a message_id without its NUL", b"4F2A"),
]


@pytest.mark.parametrize(
    "body", [c[1] for c in UNDECODABLE_RESPS], ids=[c[0] for c in UNDECODABLE_RESPS]
)
async def test_an_undecodable_submit_sm_resp_is_a_failure_to_retry(body: bytes) -> None:
    async with Smsc(SERVES) as smsc, connector_to(smsc, Sink()) as connector:
        sending = asyncio.create_task(connector.send(outbound()))
        conn = await smsc.connection()
        submit = await conn.next()
        conn.write(frame(SUBMIT_SM_RESP, submit.sequence, body))
        result = await bounded(sending, "sending", WAIT)
        assert isinstance(result, Failed) and result.retryable


# -- 11. receipts through the connector ---------------------------------------------------

STORES = [
    # (id, what storing does, the deliver_sm_resp's status)
    ("stored: ESME_ROK", None, ESME_ROK),
    ("the store fails: ESME_RX_T_APPN", RuntimeError("the database is down"), ESME_RX_T_APPN),
]


@pytest.mark.parametrize(("error", "status"), [c[1:] for c in STORES], ids=[c[0] for c in STORES])
async def test_a_receipt_is_acknowledged_only_once_stored(
    error: Exception | None, status: int
) -> None:
    gate = asyncio.Event()
    sink = Sink(gate, error)
    async with Smsc(SERVES) as smsc, connector_to(smsc, sink):
        conn = await smsc.connection()
        conn.write(request(receipt("77AA"), 50))
        await bounded(sink.entered.wait(), "sink.entered.wait()", WAIT)
        await conn.nothing_for(0.1)  # the sink has not returned: no deliver_sm_resp yet
        gate.set()
        assert head(await conn.next()) == (DELIVER_SM_RESP, status, 50)
    assert [[(r.part.key, r.status) for r in call] for call in sink.calls] == [
        [("77aa", ChannelStatus.DELIVERED)]
    ]
    assert len(sink.stored) == (0 if error else 1)


NOT_STORED = [
    # (id, the request, its answer's command id, the counter it counts in); an MO is
    # stored (test_smpp_mo_connector.py)
    (
        "a receipt that names no message",
        ShortMessage(
            Command.DELIVER_SM,
            source_addr="380501234567",
            destination_addr="Shop",
            esm_class=0x04,
            short_message=b"sub:001 dlvrd:001 stat:DELIVRD err:000",
        ),
        DELIVER_SM_RESP,
        "other",
    ),
    ("ENROUTE receipt", receipt("88BB", MessageState.ENROUTE), DELIVER_SM_RESP, "ENROUTE"),
    ("ACCEPTED receipt", receipt("88BC", MessageState.ACCEPTED), DELIVER_SM_RESP, "ACCEPTED"),
]


@pytest.mark.parametrize(
    ("body", "command_id", "counter"),
    [c[1:] for c in NOT_STORED],
    ids=[c[0] for c in NOT_STORED],
)
async def test_what_is_not_stored_is_answered_at_once(
    body: ShortMessage | DataSm, command_id: int, counter: str
) -> None:
    sink = Sink(gate=asyncio.Event())  # were anything given to it, it would hang there
    async with Smsc(SERVES) as smsc, connector_to(smsc, sink) as connector:
        conn = await smsc.connection()
        conn.write(request(body, 60))
        answer = await conn.next(timeout=0.5)
        assert head(answer) == (command_id, ESME_ROK, 60)
        assert answer.body == b"\x00"  # an empty message_id
        if counter == "other":
            assert counted(metrics.SMPP_INBOUND_OTHER, connector=connector.name) == 1
        else:
            labels = {"connector": connector.name, "state": counter}
            assert counted(metrics.SMPP_RECEIPTS, **labels) == 1
    assert sink.calls == []


# -- 12. closing gracefully ------------------------------------------------------------------


async def test_aclose_stores_the_receipts_in_hand_then_unbinds() -> None:
    gate = asyncio.Event()
    sink = Sink(gate)
    # UNBIND is left to the test body, to answer it late.
    script = {BIND_TRANSCEIVER: bind_ok, ENQUIRE_LINK: enquire_link_ok}
    async with Smsc(script) as smsc:
        connector = SmppConnector(
            f"scripted{next(_names)}", connector_settings(smsc, unbind_timeout=WAIT), sink
        )
        await connector.start(wait=WAIT)
        closing: asyncio.Task[None] | None = None
        try:
            conn = await smsc.connection()
            conn.write(request(receipt("101"), 61))
            await bounded(sink.entered.wait(), "sink.entered.wait()", WAIT)  # being stored
            conn.write(request(receipt("102"), 62), frame(ENQUIRE_LINK, 63))  # 62 waits behind
            assert head(await conn.next()) == (ENQUIRE_LINK_RESP, ESME_ROK, 63)
            closing = asyncio.create_task(connector.aclose())
            await conn.nothing_for(0.1)  # neither acknowledged nor unbound while storing
            gate.set()
            acks = [await conn.next(), await conn.next()]
            assert [head(a) for a in acks] == [
                (DELIVER_SM_RESP, ESME_ROK, 61),
                (DELIVER_SM_RESP, ESME_ROK, 62),
            ]
            unbind = await conn.next()
            assert unbind.command_id == UNBIND
            await asyncio.sleep(0.1)
            assert not closing.done()  # aclose waits for the unbind_resp
            conn.write(frame(UNBIND_RESP, unbind.sequence))
            await bounded(closing, "closing", WAIT)
            await bounded(conn.ended.wait(), "conn.ended.wait()", WAIT)
        finally:
            gate.set()
            await (closing if closing is not None else connector.aclose())
    assert smsc.count(UNBIND) == 1
    assert [r.part.key for r in sink.stored] == ["101", "102"]
    assert connector.bound_links == 0
