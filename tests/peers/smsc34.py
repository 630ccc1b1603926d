"""smsc34: an SMSC for batgate's SMPP tests and benchmarks, built on smpp34's ``Server``.

Why a third-party server: our SMPP client connector has to be proven against an SMSC we
did not write, or it would only ever meet our own reading of the spec. smpp34 (a Rust
core) frames, decodes and answers the PDUs; this script only decides what each
``submit_sm`` gets, and keeps that decision cheap enough for the benchmark to push
thousands of messages a second through it on a small machine.

A test picks an outcome by picking a destination: its last four digits decide what
happens (``RECEIPTS`` and the four special suffixes below; anything else is accepted and
gets a DELIVRD receipt). A small TCP proxy sits in front of the server so that a test can
drop every connection at once (``POST /drop``), as an SMSC does when it restarts in the
middle of a window; receipts that could not be delivered are kept and sent again on the
next session of the same ``system_id``, as a real SMSC does after a reconnect. The
control API (``GET /stats``) says what the SMSC saw.

``POST /mo`` sends a mobile-originated message (deliver_sm, esm_class 0, or 0x40
with a UDH; with ``count`` and ``rate``, a stream of that many, ``text`` formatted
with ``{i}`` and ``{t}``, for the bench) to a bound session of ``system_id`` (any
that can receive, when not given)::

    {"system_id": "batgate", "from": "+380501234567", "to": "4040", "text": "STOP",
     "coding": "gsm7" | "ucs2" | "latin1", "split": null | "udh" | "udh16" | "sar" |
     "payload", "parts_per": 10, "only": [1, 3]}

and answers ``{"sent": parts}`` (409 when no session can take it). The text is split
here (``parts_per`` characters a part, or as many as fit), ``only`` sends just those
parts (a message whose other parts never come), and all parts go at once, as a
windowed SMSC sends them. A part NAKed, or lost with its session, is sent again
every ``--receipt-retry`` seconds as a receipt is; ``GET /stats`` counts ``moSent``,
``moAcked``, ``moNacked``, ``moRequeued`` and ``moPending``.

smpp34 accepts every bind (its Python API has no authentication hook), answers
enquire_link itself, and NAKs with ESME_RSYSERR any submit whose event is garbage
collected unanswered — so held submits are kept referenced until a drop releases them.

Run: ``python tests/peers/smsc34.py --port P --control-port C [options]``; it prints
``ready`` once the SMPP port and the control API listen, and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, cast

import smpp34
from aiohttp import web

HOST = "127.0.0.1"
FIRST_ID = 1_000_000  # message ids count up from here: the first one is 1000001
RECEIPT_ESM_CLASS = 0x04  # esm_class of an SMSC delivery receipt
# Seconds a receipt waits at least after its submit was accepted: smpp34 writes the
# submit_sm_resp and a deliver_sm from different tasks, so a receipt sent at once can
# overtake the resp it follows (a few percent of them did, under load).
ORDER_GUARD = 0.005

# Receipt stat -> (message_state TLV value, err code of the classic text).
STATES: dict[str, tuple[int, str]] = {
    "ENROUTE": (1, "000"),
    "DELIVRD": (2, "000"),
    "EXPIRED": (3, "000"),
    "UNDELIV": (5, "001"),
    "REJECTD": (8, "000"),
}

# Destination suffix -> the receipts an accepted submit gets, in order.
RECEIPTS: dict[str, tuple[str, ...]] = {
    "0001": ("UNDELIV",),
    "0004": ("REJECTD",),
    "0005": (),
    "0007": ("ENROUTE", "DELIVRD"),
    "0009": ("EXPIRED",),
}
DEFAULT_RECEIPTS = ("DELIVRD",)

THROTTLE = "0002"  # ESME_RTHROTTLED for the first --throttle-count submits, then default
INVALID = "0003"  # ESME_RINVDSTADR, always
RECEIPT_FIRST = "0006"  # the DELIVRD receipt is acknowledged before the submit is answered
HOLD = "0008"  # the first submit is never answered (until a drop releases it)

# Mobile-originated messages: data_coding by name, and one part's room in octets
# (whole in one deliver_sm; with an 8-bit UDH or SAR TLVs; with a 16-bit UDH).
MO_CODINGS = {"gsm7": 0x00, "latin1": 0x03, "ucs2": 0x08}
MO_ROOM = {"gsm7": (160, 153, 152), "latin1": (140, 134, 133), "ucs2": (140, 134, 132)}
MO_SPLITS = (None, "udh", "udh16", "sar", "payload")
UDHI = 0x40  # esm_class: the short message starts with a user data header
TESTS = Path(__file__).resolve().parent.parent  # tests/, for smpp_support's GSM table


@dataclass(frozen=True)
class Options:
    port: int
    control_port: int
    system_id: str
    receipt_delay: float
    throttle_count: int
    id_format: str
    receipt_id_format: str
    id_zero_pad: int
    receipt_format: str
    date_digits: int
    records: bool
    receipts: bool
    receipt_retry: float
    inbound_capacity: int


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True, help="SMPP port (the proxy's)")
    p.add_argument("--control-port", type=int, required=True, help="HTTP control API port")
    p.add_argument("--system-id", default="smsc34", help="the SMSC's system_id in bind_resp")
    p.add_argument(
        "--receipt-delay",
        type=float,
        default=0.0,
        help=f"seconds before a receipt (at least {ORDER_GUARD}, so it follows the resp)",
    )
    p.add_argument("--throttle-count", type=int, default=2, help="throttled submits per *0002")
    p.add_argument("--id-format", choices=("decimal", "hex"), default="decimal")
    p.add_argument(
        "--receipt-id-format",
        choices=("decimal", "hex"),
        default=None,
        help="base of the id named in receipts (default: --id-format)",
    )
    p.add_argument("--id-zero-pad", type=int, default=0, help="pad receipt ids to N digits")
    p.add_argument("--receipt-format", choices=("both", "text", "tlv"), default="both")
    p.add_argument("--date-digits", type=int, choices=(10, 12), default=10)
    p.add_argument("--no-records", action="store_true", help="keep counters only (benchmarks)")
    p.add_argument("--no-receipts", action="store_true", help="never send a receipt")
    p.add_argument(
        "--receipt-retry",
        type=float,
        default=1.0,
        help="seconds between retries of receipts that could not be delivered",
    )
    p.add_argument(
        "--inbound-capacity",
        type=int,
        default=4096,
        help="smpp34's event queue; when full, submits are NAKed ESME_RMSGQFUL",
    )
    a = p.parse_args(argv)
    return Options(
        port=a.port,
        control_port=a.control_port,
        system_id=a.system_id,
        receipt_delay=a.receipt_delay,
        throttle_count=a.throttle_count,
        id_format=a.id_format,
        receipt_id_format=a.receipt_id_format or a.id_format,
        id_zero_pad=a.id_zero_pad,
        receipt_format=a.receipt_format,
        date_digits=a.date_digits,
        records=not a.no_records,
        receipts=not a.no_receipts,
        receipt_retry=a.receipt_retry,
        inbound_capacity=a.inbound_capacity,
    )


# ── Receipts ────────────────────────────────────────────────────────────────


def format_id(number: int, base: str) -> str:
    return str(number) if base == "decimal" else format(number, "x")


def preview(short_message: bytes, data_coding: int, esm_class: int) -> str:
    """The first 20 characters of a message for the receipt text, or "" if not printable."""
    if esm_class & 0x40 and short_message:  # a UDH comes first: skip it
        short_message = short_message[1 + short_message[0] :]
    encoding = "utf-16-be" if data_coding == 8 else "latin-1"
    text = short_message.decode(encoding, errors="replace")[:20]
    return text if text.isascii() and text.isprintable() else ""


@lru_cache(maxsize=64)
def stamp(second: int, date_format: str) -> str:
    """A receipt date (UTC); cached, as thousands of receipts a second share it."""
    return time.strftime(date_format, time.gmtime(second))


def receipt_text(
    receipt_id: str, stat: str, submitted: float, done: float, text: str, date_format: str
) -> bytes:
    """The classic (SMPP 3.4 appendix B) delivery receipt text."""
    dlvrd = "001" if stat == "DELIVRD" else "000"
    err = STATES[stat][1]
    submit_date = stamp(int(submitted), date_format)
    done_date = stamp(int(done), date_format)
    return (
        f"id:{receipt_id} sub:001 dlvrd:{dlvrd} submit date:{submit_date} "
        f"done date:{done_date} stat:{stat} err:{err} text:{text}"
    ).encode("ascii")


@dataclass(slots=True)
class Receipt:
    """A deliver_sm receipt owed to an ESME: kept until its deliver_sm_resp says OK."""

    system_id: str
    session_id: str
    source: str  # the submit's destination
    destination: str  # the submit's source
    source_ton: int
    source_npi: int
    dest_ton: int
    dest_npi: int
    short_message: bytes
    tlvs: list[smpp34.Tlv]


# ── Mobile-originated messages ──────────────────────────────────────────────


@dataclass(slots=True)
class Mo:
    """One part of a mobile-originated message owed to an ESME: kept until its
    deliver_sm_resp says OK."""

    system_id: str
    source: str
    destination: str
    source_ton: int
    source_npi: int
    dest_ton: int
    dest_npi: int
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: list[smpp34.Tlv]


@lru_cache(maxsize=1)
def gsm_septets() -> dict[str, bytes]:
    """Character -> its septets, one per octet (as SMPP carries GSM-7), from the table the
    tests read out of the standard (tests/smpp_support.py), not batgate's. Imported on
    the first GSM-7 MO, so the benchmark's SMSC never loads it."""
    if str(TESTS) not in sys.path:
        sys.path.append(str(TESTS))
    import smpp_support

    table = {
        chr(c): bytes((i,))
        for i, c in enumerate(smpp_support.SEPTET_TO_CODE_POINT)
        if c is not None
    }
    table |= {c: bytes((0x1B, code)) for code, c in smpp_support.EXTENSION.items()}
    return table


def mo_units(text: str, coding: str) -> list[bytes]:
    """Each character's encoding; ValueError for one the alphabet does not have."""
    if coding == "gsm7":
        table = gsm_septets()
        missing = [c for c in text if c not in table]
        if missing:
            raise ValueError(f"{missing[0]!r} is not in GSM 03.38")
        return [table[c] for c in text]
    codec = {"latin1": "latin-1", "ucs2": "utf-16-be"}[coding]
    return [c.encode(codec) for c in text]  # UnicodeEncodeError is a ValueError


def mo_chunks(units: list[bytes], room: int, per: int | None) -> list[bytes]:
    """`per` characters a part when given, else as many as fit in `room` octets."""
    if per is not None:
        return [b"".join(units[i : i + per]) for i in range(0, len(units), per)] or [b""]
    chunks, current = [], b""
    for unit in units:
        if len(current) + len(unit) > room:
            chunks.append(current)
            current = b""
        current += unit
    return [*chunks, current]


def mo_parts(
    text: str, coding: str, split: str | None, ref: int, per: int | None
) -> list[tuple[int, bytes, list[smpp34.Tlv]]]:
    """(esm_class, short_message, TLVs) of each deliver_sm carrying the text."""
    if coding not in MO_CODINGS or split not in MO_SPLITS:
        raise ValueError(f"coding {coding!r} or split {split!r} is not one this SMSC sends")
    units = mo_units(text, coding)
    if split == "payload":
        return [(0, b"", [smpp34.Tlv(smpp34.TLV_MESSAGE_PAYLOAD, b"".join(units))])]
    if split is None:
        whole = b"".join(units)
        if len(whole) > 254:
            raise ValueError(f"{len(whole)} octets do not fit one short_message: split it")
        return [(0, whole, [])]
    chunks = mo_chunks(units, MO_ROOM[coding][2 if split == "udh16" else 1], per)
    total = len(chunks)
    if total > 255:
        raise ValueError(f"{total} parts, more than 255")
    parts: list[tuple[int, bytes, list[smpp34.Tlv]]] = []
    for seq, chunk in enumerate(chunks, start=1):
        if split == "sar":
            tlvs = [
                smpp34.Tlv(smpp34.TLV_SAR_MSG_REF_NUM, ref.to_bytes(2, "big")),
                smpp34.Tlv(smpp34.TLV_SAR_TOTAL_SEGMENTS, bytes((total,))),
                smpp34.Tlv(smpp34.TLV_SAR_SEGMENT_SEQNUM, bytes((seq,))),
            ]
            parts.append((0, chunk, tlvs))
        elif split == "udh16":
            parts.append((UDHI, bytes((6, 0x08, 4, ref >> 8, ref & 0xFF, total, seq)) + chunk, []))
        else:
            parts.append((UDHI, bytes((5, 0x00, 3, ref & 0xFF, total, seq)) + chunk, []))
    return parts


def mo_address(address: str) -> tuple[str, int, int]:
    """(address, TON, NPI): `+digits` international, digits unknown, else alphanumeric."""
    if address.startswith("+"):
        return address[1:], 1, 1
    if address.isdigit():
        return address, 0, 1
    return address, 5, 0


# ── Connection-dropping proxy ───────────────────────────────────────────────


class _End(asyncio.Protocol):
    """One end of a proxied connection: what it reads, the other end writes."""

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.other: _End | None = None
        self.early: list[bytes] = []  # what arrived before the other end was connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.write(data)
        else:
            self.early.append(data)

    def eof_received(self) -> bool:
        self.link.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.close()

    def pause_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.resume_reading()


class _Link:
    """A client connection and its connection to the smpp34 server, closed together."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.client: _End = _ClientEnd(self)
        self.server = _End(self)
        self.closed = False

    def close(self, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.proxy.links.discard(self)
        for end in (self.client, self.server):
            if end.transport is None:
                continue
            if abort:
                end.transport.abort()
            else:
                end.transport.close()

    async def connect(self, port: int) -> None:
        """Open the server side, then let the client's bytes flow."""
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: self.server, HOST, port)
        except OSError:
            self.close(abort=True)
            return
        if self.closed:  # the client left while we connected
            if self.server.transport is not None:
                self.server.transport.close()
            return
        self.client.other, self.server.other = self.server, self.client
        if self.server.transport is not None and self.client.early:
            self.server.transport.writelines(self.client.early)
            self.client.early.clear()
        if self.client.transport is not None:
            self.client.transport.resume_reading()


class _ClientEnd(_End):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.transport is not None:
            self.transport.pause_reading()  # until the server side is connected
        self.link.proxy.links.add(self.link)
        self.link.proxy.spawn(self.link.connect(self.link.proxy.upstream_port))


class Proxy:
    """TCP proxy in front of the smpp34 server, so every connection can be dropped at once."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.links: set[_Link] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.AbstractServer | None = None

    def _accept(self) -> _End:
        return _Link(self).client

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def start(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._accept, HOST, port)

    def drop(self) -> int:
        """Close every proxied connection, both sides, discarding what is buffered."""
        links = list(self.links)
        for link in links:
            link.close(abort=True)
        return len(links)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        self.drop()
        for task in list(self.tasks):
            task.cancel()
        if self.server is not None:
            await self.server.wait_closed()


# ── The SMSC ────────────────────────────────────────────────────────────────


@dataclass
class Counters:
    submits: int = 0
    accepted: int = 0
    rejected: int = 0
    held: int = 0
    binds: int = 0
    unbinds: int = 0
    drops: int = 0
    dropped_connections: int = 0
    receipts_sent: int = 0
    receipts_acked: int = 0
    receipts_requeued: int = 0
    mo_sent: int = 0
    mo_acked: int = 0
    mo_nacked: int = 0
    mo_requeued: int = 0
    by_destination: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # digits -> submits, for 0002/0008


# (at, destination, source, data_coding, esm_class, short_message, tlvs, message_id, status)
Record = tuple[float, str, str, int, int, bytes, list[smpp34.Tlv], str | None, str]


def render(record: Record) -> dict[str, Any]:
    at, destination, source, data_coding, esm_class, short_message, tlvs, message_id, status = (
        record
    )
    return {
        "destination": destination,
        "source": source,
        "dataCoding": data_coding,
        "esmClass": esm_class,
        "shortMessage": short_message.hex(),
        "tlvs": {f"0x{t.tag:04x}": t.value.hex() for t in tlvs},
        "messageId": message_id,
        "status": status,
        "at": at,
    }


class Smsc:
    """Decides every submit_sm, sends receipts, and counts what it saw."""

    def __init__(self, opts: Options, server: smpp34.Server) -> None:
        self.opts = opts
        self.server = server
        self.counters = Counters()
        self.records: list[Record] = []
        self.sessions: dict[str, smpp34.Esme] = {}  # live sessions by session_id
        self.systems: dict[str, str] = {}  # session_id -> system_id, kept after unbind
        self.pending: dict[str, deque[Receipt]] = {}  # undelivered receipts by system_id
        self.mo_pending: dict[str, list[Mo]] = {}  # MO parts to send again, by system_id
        self.mo_ref = 0
        self.flushing: set[str] = set()
        self.held_events: list[smpp34.SubmitSmEvent] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.number = FIRST_ID
        self.date_format = "%y%m%d%H%M%S" if opts.date_digits == 12 else "%y%m%d%H%M"
        self.receipt_delay = max(opts.receipt_delay, ORDER_GUARD)
        self.loop = asyncio.get_running_loop()

    # -- event loop ----------------------------------------------------------

    async def run(self) -> None:
        next_event = self.server.next
        while True:
            event = await next_event()
            try:
                if isinstance(event, smpp34.SubmitSmEvent):
                    self.on_submit(event)
                elif isinstance(event, smpp34.Esme):
                    self.on_bind(event)
                else:
                    self.on_unbound(event)
            except Exception as exc:  # one bad event must not stop the SMSC
                print(f"smsc34: {event!r}: {exc!r}", file=sys.stderr, flush=True)

    async def retry_receipts(self) -> None:
        """Receipts and MO parts that were NAKed or lost, sent again every --receipt-retry."""
        while True:
            await asyncio.sleep(self.opts.receipt_retry)
            for system_id, queue in self.pending.items():
                if queue and system_id not in self.flushing:
                    self.spawn(self.flush(system_id))
            for system_id in list(self.mo_pending):
                self.resend_mo(system_id)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def on_bind(self, esme: smpp34.Esme) -> None:
        session_id, system_id = esme.session_id, esme.system_id
        self.sessions[session_id] = esme
        self.systems[session_id] = system_id
        self.counters.binds += 1
        if self.pending.get(system_id) and system_id not in self.flushing:
            self.spawn(self.flush(system_id))
        self.resend_mo(system_id)

    def on_unbound(self, event: smpp34.Unbound) -> None:
        self.sessions.pop(event.session_id, None)
        self.counters.unbinds += 1

    # -- submits -------------------------------------------------------------

    def on_submit(self, ev: smpp34.SubmitSmEvent) -> None:
        c = self.counters
        c.submits += 1
        destination = ev.destination_addr
        c.by_destination[destination] = c.by_destination.get(destination, 0) + 1
        suffix = destination[-4:]
        if suffix == INVALID:
            self.reject(ev, destination, smpp34.ESME_RINVDSTADR)
        elif suffix == THROTTLE and self.seen(destination) <= self.opts.throttle_count:
            self.reject(ev, destination, smpp34.ESME_RTHROTTLED)
        elif suffix == HOLD and self.seen(destination) == 1:
            self.held_events.append(ev)  # a reference, or smpp34 NAKs it ESME_RSYSERR
            c.held += 1
            self.record(ev, destination, None, "held")
        else:
            self.accept(ev, destination, suffix)

    def seen(self, destination: str) -> int:
        digits = destination.lstrip("+")
        count = self.counters.seen.get(digits, 0) + 1
        self.counters.seen[digits] = count
        return count

    def reject(self, ev: smpp34.SubmitSmEvent, destination: str, status: int) -> None:
        ev.reject(status)
        self.counters.rejected += 1
        self.record(ev, destination, None, "rejected")

    def accept(self, ev: smpp34.SubmitSmEvent, destination: str, suffix: str) -> None:
        self.number += 1
        number = self.number
        message_id = str(number) if self.opts.id_format == "decimal" else format(number, "x")
        self.counters.accepted += 1
        self.record(ev, destination, message_id, "accepted")
        if suffix == RECEIPT_FIRST and self.opts.receipts:
            self.spawn(self.receipt_first(ev, number, message_id))
            return
        ev.accept(message_id)
        stats = RECEIPTS.get(suffix, DEFAULT_RECEIPTS)
        if stats and self.opts.receipts:
            self.loop.call_later(
                self.receipt_delay, self.receipts_due, ev, number, stats, time.time()
            )

    def record(
        self, ev: smpp34.SubmitSmEvent, destination: str, message_id: str | None, status: str
    ) -> None:
        if self.opts.records:
            self.records.append(
                (
                    time.time(),
                    destination,
                    ev.source_addr,
                    ev.data_coding,
                    ev.esm_class,
                    ev.short_message,
                    ev.tlvs,
                    message_id,
                    status,
                )
            )

    # -- receipts ------------------------------------------------------------

    def make_receipt(
        self, ev: smpp34.SubmitSmEvent, number: int, stat: str, submitted: float
    ) -> Receipt:
        opts = self.opts
        receipt_id = format_id(number, opts.receipt_id_format).zfill(opts.id_zero_pad)
        tlvs: list[smpp34.Tlv] = []
        if opts.receipt_format != "text":
            tlvs = [
                smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, receipt_id.encode() + b"\x00"),
                smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, bytes([STATES[stat][0]])),
            ]
        text = b""
        if opts.receipt_format != "tlv":
            body = preview(ev.short_message, ev.data_coding, ev.esm_class)
            text = receipt_text(receipt_id, stat, submitted, time.time(), body, self.date_format)
        session_id = ev.session_id
        return Receipt(
            system_id=self.systems.get(session_id, ""),
            session_id=session_id,
            source=ev.destination_addr,
            destination=ev.source_addr,
            source_ton=ev.dest_addr_ton,
            source_npi=ev.dest_addr_npi,
            dest_ton=ev.source_addr_ton,
            dest_npi=ev.source_addr_npi,
            short_message=text,
            tlvs=tlvs,
        )

    def receipts_due(
        self, ev: smpp34.SubmitSmEvent, number: int, stats: tuple[str, ...], submitted: float
    ) -> None:
        if len(stats) == 1:
            self.send(self.make_receipt(ev, number, stats[0], submitted))
        else:
            self.spawn(self.send_in_order(ev, number, stats, submitted))

    async def send_in_order(
        self, ev: smpp34.SubmitSmEvent, number: int, stats: tuple[str, ...], submitted: float
    ) -> None:
        """Several receipts for one message: each is acknowledged before the next goes."""
        for stat in stats:
            receipt = self.make_receipt(ev, number, stat, submitted)
            if not await self.deliver(receipt):
                self.requeue(receipt)

    async def receipt_first(self, ev: smpp34.SubmitSmEvent, number: int, message_id: str) -> None:
        """Send the DELIVRD receipt, await its deliver_sm_resp, only then answer the submit."""
        receipt = self.make_receipt(ev, number, "DELIVRD", time.time())
        if not await self.deliver(receipt):
            self.requeue(receipt)
        ev.accept(message_id)

    def esme_for(self, receipt: Receipt) -> smpp34.Esme | None:
        """The submit's own session if it can take a deliver_sm, else another of its system."""
        esme = self.sessions.get(receipt.session_id)
        if esme is not None and esme.can_receive:
            return esme
        for session_id, other in self.sessions.items():
            if self.systems.get(session_id) == receipt.system_id and other.can_receive:
                receipt.session_id = session_id
                return other
        return None

    @staticmethod
    def deliver_sm(esme: smpp34.Esme, receipt: Receipt) -> asyncio.Future[smpp34.DeliverSmResp]:
        return asyncio.ensure_future(
            esme.deliver_sm(
                receipt.destination,
                receipt.short_message,
                source_addr=receipt.source,
                source_addr_ton=receipt.source_ton,
                source_addr_npi=receipt.source_npi,
                dest_addr_ton=receipt.dest_ton,
                dest_addr_npi=receipt.dest_npi,
                esm_class=RECEIPT_ESM_CLASS,
                tlvs=receipt.tlvs,
            )
        )

    def send(self, receipt: Receipt) -> None:
        """Send one receipt without a task per receipt: a callback counts its resp."""
        esme = self.esme_for(receipt)
        if esme is None:
            self.requeue(receipt)
            return
        self.counters.receipts_sent += 1
        self.deliver_sm(esme, receipt).add_done_callback(partial(self.receipt_done, receipt))

    def receipt_done(self, receipt: Receipt, future: asyncio.Future[smpp34.DeliverSmResp]) -> None:
        if future.cancelled():
            return
        # An exception means the session is gone (smpp34 says ESME_RSYSERR); a NAK means
        # the ESME could not take it now: either way a real SMSC sends it again later.
        if future.exception() is None and future.result().is_success:
            self.counters.receipts_acked += 1
        else:
            self.requeue(receipt)

    async def deliver(self, receipt: Receipt) -> bool:
        """Send one receipt and await its resp; False if it has to be sent again."""
        esme = self.esme_for(receipt)
        if esme is None:
            return False
        self.counters.receipts_sent += 1
        try:
            resp = await self.deliver_sm(esme, receipt)
        except smpp34.SmppError:
            return False
        if not resp.is_success:
            return False
        self.counters.receipts_acked += 1
        return True

    def requeue(self, receipt: Receipt) -> None:
        self.pending.setdefault(receipt.system_id, deque()).append(receipt)
        self.counters.receipts_requeued += 1

    async def flush(self, system_id: str) -> None:
        """Send the receipts a system is owed, in order, while one of its sessions takes them."""
        queue = self.pending.get(system_id)
        if not queue or system_id in self.flushing:
            return
        self.flushing.add(system_id)
        try:
            while queue and self.esme_for(queue[0]) is not None:
                receipt = queue.popleft()
                if not await self.deliver(receipt):
                    queue.appendleft(receipt)
                    self.counters.receipts_requeued += 1
                    break
        finally:
            self.flushing.discard(system_id)

    # -- mobile-originated messages ---------------------------------------------

    def esme_of(self, system_id: str | None) -> smpp34.Esme | None:
        """A session of `system_id` (of any system when None) that can take a deliver_sm."""
        for session_id, esme in self.sessions.items():
            if esme.can_receive and system_id in (None, self.systems.get(session_id)):
                return esme
        return None

    def send_mo(self, doc: dict[str, Any]) -> int | None:
        """Send the parts of a `POST /mo` at once (those in `only`, when given); how many
        were sent, or None when no session can take them. ValueError: a bad request."""
        coding = doc.get("coding", "gsm7")
        ref = (self.mo_ref + 1) % 65536
        parts = mo_parts(str(doc["text"]), coding, doc.get("split"), ref, doc.get("parts_per"))
        source, source_ton, source_npi = mo_address(str(doc["from"]))
        destination, dest_ton, dest_npi = mo_address(str(doc["to"]))
        esme = self.esme_of(doc.get("system_id"))
        if esme is None:
            return None
        self.mo_ref = ref
        system_id = self.systems.get(esme.session_id, "")
        only = doc.get("only")
        chosen = [part for seq, part in enumerate(parts, start=1) if only is None or seq in only]
        for esm_class, short_message, tlvs in chosen:
            mo = Mo(
                system_id,
                source,
                destination,
                source_ton,
                source_npi,
                dest_ton,
                dest_npi,
                esm_class,
                MO_CODINGS[coding],
                short_message,
                tlvs,
            )
            self.deliver_mo(mo, esme)
        return len(chosen)

    def deliver_mo(self, mo: Mo, esme: smpp34.Esme | None = None) -> None:
        """Send one part without awaiting its resp (an ESME may hold a part's resp until
        the other parts came); a callback counts the resp."""
        esme = esme or self.esme_of(mo.system_id)
        if esme is None:
            self.requeue_mo(mo)
            return
        self.counters.mo_sent += 1
        future = asyncio.ensure_future(
            esme.deliver_sm(
                mo.destination,
                mo.short_message,
                source_addr=mo.source,
                source_addr_ton=mo.source_ton,
                source_addr_npi=mo.source_npi,
                dest_addr_ton=mo.dest_ton,
                dest_addr_npi=mo.dest_npi,
                esm_class=mo.esm_class,
                data_coding=mo.data_coding,
                tlvs=mo.tlvs,
            )
        )
        future.add_done_callback(partial(self.mo_done, mo))

    def mo_done(self, mo: Mo, future: asyncio.Future[smpp34.DeliverSmResp]) -> None:
        if future.cancelled():
            return
        if future.exception() is None:
            if future.result().is_success:
                self.counters.mo_acked += 1
                return
            self.counters.mo_nacked += 1
        self.requeue_mo(mo)  # NAKed, or its session is gone: sent again later

    def requeue_mo(self, mo: Mo) -> None:
        self.mo_pending.setdefault(mo.system_id, []).append(mo)
        self.counters.mo_requeued += 1

    def resend_mo(self, system_id: str) -> None:
        """Every part owed to a system, at once, when one of its sessions can take them."""
        if self.mo_pending.get(system_id) and self.esme_of(system_id) is not None:
            for mo in self.mo_pending.pop(system_id):
                self.deliver_mo(mo)

    # -- control -------------------------------------------------------------

    def drop(self, connections: int) -> None:
        """After the proxy closed every connection: count it and release the held submits."""
        self.counters.drops += 1
        self.counters.dropped_connections += connections
        self.held_events.clear()  # their sessions are gone: smpp34's NAK reaches no one

    def reset(self) -> None:
        self.counters = Counters()
        self.records = []

    def stats(self, messages: bool) -> dict[str, Any]:
        c = self.counters
        doc: dict[str, Any] = {
            "submits": c.submits,
            "accepted": c.accepted,
            "rejected": c.rejected,
            "held": c.held,
            "binds": c.binds,
            "unbinds": c.unbinds,
            "drops": c.drops,
            "droppedConnections": c.dropped_connections,
            "receiptsSent": c.receipts_sent,
            "receiptsAcked": c.receipts_acked,
            "receiptsRequeued": c.receipts_requeued,
            "receiptsPending": sum(len(q) for q in self.pending.values()),
            "moSent": c.mo_sent,
            "moAcked": c.mo_acked,
            "moNacked": c.mo_nacked,
            "moRequeued": c.mo_requeued,
            "moPending": sum(len(q) for q in self.mo_pending.values()),
            "sessions": len(self.sessions),
            "byDestination": dict(c.by_destination),
        }
        if messages:
            doc["messages"] = [render(r) for r in self.records]
        return doc

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        self.held_events.clear()
        await self.server.stop()


# ── Control API ─────────────────────────────────────────────────────────────


def control_app(smsc: Smsc, proxy: Proxy) -> web.Application:
    async def stats(request: web.Request) -> web.Response:
        messages = request.query.get("messages", "") in ("1", "true", "yes")
        return web.json_response(smsc.stats(messages))

    async def reset(request: web.Request) -> web.Response:
        smsc.reset()
        return web.json_response({"reset": True})

    async def drop(request: web.Request) -> web.Response:
        dropped = proxy.drop()
        smsc.drop(dropped)
        return web.json_response({"dropped": dropped})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def mo(request: web.Request) -> web.Response:
        try:
            doc = await request.json()
            if "count" in doc:  # a stream of messages (the bench): started, not awaited
                if smsc.esme_of(doc.get("system_id")) is None:
                    return web.json_response({"error": "no bound session"}, status=409)
                streams.add(asyncio.ensure_future(mo_stream(smsc, doc)))
                return web.json_response({"sent": int(doc["count"])})
            sent = smsc.send_mo(doc)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": repr(exc)}, status=400)
        if sent is None:
            return web.json_response({"error": "no bound session takes a deliver_sm"}, status=409)
        return web.json_response({"sent": sent})

    streams: set[asyncio.Future[None]] = set()
    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_post("/drop", drop)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/mo", mo)
    return app


async def mo_stream(smsc: Smsc, doc: dict[str, Any]) -> None:
    """`POST /mo` with `count` (and `rate` per second, 0 or none: at once): that many
    messages, each with `text` formatted with `i` (its number) and `t` (the time it
    is sent, epoch seconds): how the bench times each one to its webhook; `from`
    formatted with `i` too (many phones)."""
    count, rate = int(doc["count"]), float(doc.get("rate") or 0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(count):
        if rate > 0:
            wait = start + i / rate - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        elif i % 200 == 0:
            await asyncio.sleep(0)  # let the session write what it has
        text = str(doc["text"]).format(i=i, t=time.time())
        smsc.send_mo(doc | {"from": str(doc["from"]).format(i=i), "text": text})


# ── Main ────────────────────────────────────────────────────────────────────


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def start_server(opts: Options) -> tuple[smpp34.Server, int]:
    """smpp34's server on a free internal port (it cannot report a port it chose itself)."""
    for attempt in range(5):
        port = free_port()
        server = smpp34.Server(
            HOST, port, system_id=opts.system_id, inbound_capacity=opts.inbound_capacity
        )
        try:
            await server.start()
        except smpp34.SmppError:
            if attempt == 4:
                raise
            continue
        return server, port
    raise RuntimeError("unreachable")


async def serve(opts: Options) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    server, internal_port = await start_server(opts)
    smsc = Smsc(opts, server)
    loops = [asyncio.ensure_future(smsc.run()), asyncio.ensure_future(smsc.retry_receipts())]
    proxy = Proxy(internal_port)
    await proxy.start(opts.port)
    runner = web.AppRunner(control_app(smsc, proxy), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, opts.control_port).start()
    print("ready", flush=True)

    await stop.wait()
    await runner.cleanup()
    await proxy.stop()
    for task in loops:
        task.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    await smsc.stop()


def main(argv: Sequence[str] | None = None) -> int:
    faulthandler.enable()  # a crash of the SMSC leaves its stack in its log
    opts = parse_args(argv)
    try:
        import uvloop  # a faster event loop for the proxy, when batgate's uvicorn brought it
    except ImportError:
        asyncio.run(serve(opts))
    else:
        uvloop.run(serve(opts))
    return 0


if __name__ == "__main__":
    code = main()
    # smpp34's tokio threads may still call into Python while the interpreter finalizes
    # (seen: "PyGILState_Release: thread state must be current", then SIGSEGV, in about
    # half the runs of a script stopping a Server with a next() pending): everything is
    # stopped and flushed by now, so leave without finalizing, with the real exit code.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
