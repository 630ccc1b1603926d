"""Carrier receipts matched to messages: the parts of each hand-over and their receipts.

A carrier that answers receipts later (SMPP) names the part a receipt is for by
its own id. Two orders have to meet:

- the part is recorded first: the receipt finds it and marks it, and when every
  part of the hand-over has its answer the outcome is noted on the message, due
  now (`domain.lifecycle.on_receipt_heard`), for the engine to apply through the
  state machine, with its webhook (:meth:`Receipts.record`);
- the receipt comes first (before the submit's answer, or before the dispatcher
  wrote the hand-over — the usual case with a fast carrier): it is kept in
  `carrier_receipts`, and taken when the part is recorded, in the very
  transaction that moves the message to `processing`.

Either way the receipt is in the database before the caller acknowledges it to
the carrier. Nothing here decides a status: every change of a message is computed
by `domain.lifecycle` and written as a compare-and-set on its version.

On PostgreSQL the two transactions can pass each other: a receipt stored as early
while the transaction recording its part is still open, that transaction having
looked for early receipts before the receipt committed. So each side looks again
once it has committed (:meth:`Receipts.record` for the receipts it kept early,
:meth:`Receipts.take_early` for the hand-overs just written): whichever commits
last sees the other. And two transactions answering parts of one hand-over lock
its parts while they read its outcome, so the later one sees the earlier one's
answers. On SQLite writers take turns and none of this happens.

Every statement covers a whole batch (one SELECT, then executemany writes), so
the cost per receipt stays small at thousands a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batgate.domain.lifecycle import Note, on_receipt_heard
from batgate.domain.outcomes import CarrierId, Handover, PartReceipt, handover_outcome
from batgate.domain.records import MessageRecord
from batgate.domain.status import ChannelStatus
from batgate.store.database import Database
from batgate.store.rows import message_from_row
from batgate.store.schema import carrier_parts, carrier_receipts, message_notes, messages

# Receipts nobody claims (a late duplicate, a part never recorded) and parts that
# never got a receipt are purged after this long: longer than the longest TTL.
KEEP_SECONDS = 31 * 86_400
_CHUNK = 500  # ids per IN list
DETAIL_CHARS = 200  # of what a carrier said of a part (carrier_receipts.detail)

_PART_ROWS = (
    sa.select(
        carrier_parts.c.smsc_id,
        carrier_parts.c.message_id,
        carrier_parts.c.carrier_ref,
        carrier_parts.c.parts,
        carrier_parts.c.status,
    )
    .where(carrier_parts.c.connector == sa.bindparam("connector"))
    .where(carrier_parts.c.smsc_id.in_(sa.bindparam("ids", expanding=True)))
)
_SIBLINGS = (
    sa.select(carrier_parts.c.smsc_id, carrier_parts.c.carrier_ref, carrier_parts.c.status)
    .where(carrier_parts.c.connector == sa.bindparam("connector"))
    .where(carrier_parts.c.carrier_ref.in_(sa.bindparam("refs", expanding=True)))
)
# PostgreSQL: the parts locked, in one order, while a hand-over's outcome is read. Two
# receipts' transactions for parts of one hand-over would otherwise each see the other
# part unanswered, each mark its own, and neither end the hand-over; locked, the later
# one waits, then reads the earlier one's mark (READ COMMITTED re-reads locked rows).
_SIBLINGS_LOCKED = _SIBLINGS.order_by(carrier_parts.c.carrier_ref, carrier_parts.c.smsc_id)
_SIBLINGS_LOCKED = _SIBLINGS_LOCKED.with_for_update()
_FORGET_HANDOVER = (
    carrier_parts.delete()
    .where(carrier_parts.c.connector == sa.bindparam("b_connector"))
    .where(carrier_parts.c.carrier_ref == sa.bindparam("b_ref"))
)
_MARK_PART = (
    carrier_parts.update()
    .where(carrier_parts.c.connector == sa.bindparam("b_connector"))
    .where(carrier_parts.c.smsc_id == sa.bindparam("b_id"))
    .values(status=sa.bindparam("b_status"))
)
_FORGET_PART = (
    carrier_parts.delete()
    .where(carrier_parts.c.connector == sa.bindparam("b_connector"))
    .where(carrier_parts.c.smsc_id == sa.bindparam("b_id"))
)
_NOTE = (
    messages.update()
    .where(messages.c.id == sa.bindparam("b_id"))
    .where(messages.c.version == sa.bindparam("b_version"))
    .values(
        receipt=sa.bindparam("b_receipt"),
        due_at=sa.bindparam("b_due_at"),
        updated_at=sa.bindparam("b_now"),
        version=messages.c.version + 1,
    )
)
_EARLY_ROWS = (
    sa.select(carrier_receipts.c.smsc_id, carrier_receipts.c.status, carrier_receipts.c.detail)
    .where(carrier_receipts.c.connector == sa.bindparam("connector"))
    .where(carrier_receipts.c.smsc_id.in_(sa.bindparam("ids", expanding=True)))
)
_EARLY_FULL = (
    sa.select(
        carrier_receipts.c.smsc_id,
        carrier_receipts.c.aliases,
        carrier_receipts.c.status,
        carrier_receipts.c.detail,
    )
    .where(carrier_receipts.c.connector == sa.bindparam("connector"))
    .where(carrier_receipts.c.smsc_id.in_(sa.bindparam("ids", expanding=True)))
)
_FORGET_EARLY = (
    carrier_receipts.delete()
    .where(carrier_receipts.c.connector == sa.bindparam("b_connector"))
    .where(carrier_receipts.c.smsc_id == sa.bindparam("b_id"))
)


@dataclass(frozen=True, slots=True)
class _Part:
    smsc_id: str
    message_id: str
    carrier_ref: str
    parts: int


class Receipts:
    """Receipts as they come from a carrier's connections, stored before they are acked."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def can_miss(self) -> bool:
        """Whether a receipt and its hand-over can miss each other (see the module
        docstring): on PostgreSQL; SQLite's writers take turns."""
        return self._db.dialect == "postgresql"

    async def early(self, handovers: Sequence[Handover]) -> EarlyReceipts:
        """The receipts already in for these hand-overs' parts (a read, no lock)."""
        async with self._db.reader.connect() as conn:
            return await EarlyReceipts.read(conn, handovers)

    async def record(
        self, connector: str, receipts: Sequence[PartReceipt], now: float | None = None
    ) -> list[str]:
        """Store final receipts of parts, in one transaction; the messages whose
        hand-over they ended (their receipt announced, due now).

        A receipt whose part is not recorded (yet) is kept as an early receipt; a
        repeated receipt for a part that already has one changes nothing.
        """
        if not receipts:
            return []
        now = time.time() if now is None else now
        async with self._db.writer.begin() as conn:
            ended, unmatched = await _match(conn, connector, receipts, now)
            await _keep_early(conn, connector, unmatched, now)
        if unmatched and self.can_miss:
            # Their parts may have been written while this ran (see the module docstring).
            keys = {k for r in unmatched for k in r.part.lookups}
            ended += await self._rematch({connector: keys}, now)
        return ended

    async def awaiting(self, connector: str, handed_before: float, limit: int) -> list[str]:
        """Carrier ids of `connector`'s parts recorded before `handed_before` with no
        receipt yet, oldest first (a polled carrier is asked about these)."""
        query = (
            sa.select(carrier_parts.c.smsc_id)
            .where(carrier_parts.c.connector == connector)
            .where(carrier_parts.c.status.is_(None))
            .where(carrier_parts.c.created_at < handed_before)
            .order_by(carrier_parts.c.created_at)
            .limit(limit)
        )
        async with self._db.reader.connect() as conn:
            return [smsc_id for (smsc_id,) in await conn.execute(query)]

    async def take_early(
        self, handovers: Sequence[Handover], now: float | None = None
    ) -> list[str]:
        """After hand-overs were written: the receipts that came for their parts
        meanwhile, matched now; the messages whose hand-over that ended. Only on
        PostgreSQL (see the module docstring); SQLite's writers take turns."""
        if not self.can_miss or not handovers:
            return []
        keys: dict[str, set[str]] = {}
        for handover in handovers:
            keys.setdefault(handover.connector, set()).update(
                k for part in handover.parts for k in part.lookups
            )
        return await self._rematch(keys, time.time() if now is None else now)

    async def _rematch(self, keys: dict[str, set[str]], now: float) -> list[str]:
        """Early receipts among `keys` (per connector) whose part is recorded now:
        matched, and taken out of the early ones."""
        ended: list[str] = []
        async with self._db.writer.begin() as conn:
            for connector, ids in keys.items():
                early: list[PartReceipt] = []
                for chunk in _chunks(ids):
                    rows = await conn.execute(_EARLY_FULL, {"connector": connector, "ids": chunk})
                    early += [
                        PartReceipt(CarrierId(i, tuple(a.split())), ChannelStatus(st), d or "")
                        for i, a, st, d in rows
                    ]
                if not early:
                    continue
                done, unmatched = await _match(conn, connector, early, now)
                ended += done
                left = {r.part.key for r in unmatched}
                await _executemany(
                    conn,
                    _FORGET_EARLY,
                    [
                        {"b_connector": connector, "b_id": r.part.key}
                        for r in early
                        if r.part.key not in left
                    ],
                )
        return ended


async def _match(
    conn: AsyncConnection, connector: str, receipts: Sequence[PartReceipt], now: float
) -> tuple[list[str], list[PartReceipt]]:
    """Mark the parts these receipts are for, end the hand-overs that are complete.

    Returns the messages whose hand-over ended and the receipts whose part is unknown.
    """
    wanted = {key for r in receipts for key in r.part.lookups}
    known: dict[str, _Part] = {}
    answered: set[str] = set()
    for chunk in _chunks(wanted):
        result = await conn.execute(_PART_ROWS, {"connector": connector, "ids": chunk})
        for smsc_id, message_id, ref, parts, status in result:
            known[smsc_id] = _Part(smsc_id, message_id, ref, parts)
            if status is not None:
                answered.add(smsc_id)
    got: dict[str, ChannelStatus] = {}  # part → the receipt it gets now
    said: dict[str, list[str]] = {}  # hand-over → what the carrier said of its failed parts
    unmatched: list[PartReceipt] = []
    for receipt in receipts:
        hit = next((k for k in receipt.part.lookups if k in known), None)
        if hit is None:
            unmatched.append(receipt)
        elif hit not in answered and hit not in got:
            got[hit] = receipt.status  # (a repeated receipt for an answered part: dropped)
            if receipt.detail and receipt.status is not ChannelStatus.DELIVERED:
                said.setdefault(known[hit].carrier_ref, []).append(receipt.detail)
    if not got:
        return [], unmatched
    outcomes = await _outcomes(conn, connector, [known[k] for k in got], got)
    ended = {
        ref: (message_id, outcome, "; ".join(said.get(ref, ())))
        for ref, (message_id, outcome) in outcomes.items()
        if outcome is not None
    }
    await _executemany(
        conn,
        _MARK_PART,
        [
            {"b_connector": connector, "b_id": k, "b_status": s.value}
            for k, s in got.items()
            if known[k].carrier_ref not in ended
        ],
    )
    await _executemany(
        conn, _FORGET_HANDOVER, [{"b_connector": connector, "b_ref": ref} for ref in ended]
    )
    return await _note(conn, ended, now), unmatched


async def _note(
    conn: AsyncConnection, ended: dict[str, tuple[str, ChannelStatus, str]], now: float
) -> list[str]:
    """Note each ended hand-over's outcome on its message, through the state machine
    (`on_receipt_heard`: due now), and what the carrier said in the message's story;
    the messages noted. Their rows are locked first on PostgreSQL, so nothing changes
    them between the read and the compare-and-set."""
    if not ended:
        return []
    ids = sorted({mid for mid, _, _ in ended.values()})
    records: dict[str, MessageRecord] = {}
    for chunk in _chunks(ids):
        query = sa.select(messages).where(messages.c.id.in_(chunk)).order_by(messages.c.id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        records.update((row.id, message_from_row(row)) for row in await conn.execute(query))
    rows, noted, notes = [], [], []
    for ref, (message_id, outcome, detail) in ended.items():
        record = records.get(message_id)
        heard = None
        if record is not None:
            heard = on_receipt_heard(record.progress, outcome, ref, now, detail)
        if record is None or heard is None:
            continue  # another hand-over's (an earlier step or attempt), or final already
        notes += note_rows(record, heard.notes, now)
        rows.append(
            {
                "b_id": message_id,
                "b_version": record.version,
                "b_receipt": outcome.value,
                "b_due_at": heard.progress.due_at,
                "b_now": now,
            }
        )
        noted.append(message_id)
    await _executemany(conn, _NOTE, rows)
    if notes:
        await conn.execute(message_notes.insert(), notes)
    return noted


def note_rows(record: MessageRecord, notes: Iterable[Note], now: float) -> list[dict[str, Any]]:
    """`message_notes` rows: why things happened to a message, for its story."""
    return [
        {
            "message_id": record.id,
            "at": now,
            "step": note.step,
            "channel": record.chain[note.step].channel.value,
            "reason": note.reason,
        }
        for note in notes
    ]


async def _outcomes(
    conn: AsyncConnection, connector: str, parts: list[_Part], got: dict[str, ChannelStatus]
) -> dict[str, tuple[str, ChannelStatus | None]]:
    """Per hand-over (carrier_ref) touched: its message and its outcome so far."""
    result: dict[str, tuple[str, ChannelStatus | None]] = {}
    several: dict[str, str] = {}
    for part in parts:
        if part.parts == 1:
            result[part.carrier_ref] = (part.message_id, got[part.smsc_id])
        else:
            several[part.carrier_ref] = part.message_id
    if several:
        statuses: dict[str, list[ChannelStatus | None]] = {ref: [] for ref in several}
        siblings = _SIBLINGS_LOCKED if conn.dialect.name == "postgresql" else _SIBLINGS
        for chunk in _chunks(several):
            rows = await conn.execute(siblings, {"connector": connector, "refs": chunk})
            for smsc_id, ref, status in rows:
                now_got = got.get(smsc_id)
                statuses[ref].append(now_got or (None if status is None else ChannelStatus(status)))
        for ref, message_id in several.items():
            result[ref] = (message_id, handover_outcome(tuple(statuses[ref])))
    return result


async def _keep_early(
    conn: AsyncConnection, connector: str, receipts: Sequence[PartReceipt], now: float
) -> None:
    if not receipts:
        return
    # The newest receipt for an id wins (a carrier may correct itself or repeat).
    latest = {r.part.key: r for r in receipts}
    await _executemany(conn, _FORGET_EARLY, [{"b_connector": connector, "b_id": k} for k in latest])
    await conn.execute(
        carrier_receipts.insert(),
        [
            {
                "connector": connector,
                "smsc_id": r.part.key,
                "aliases": " ".join(r.part.aliases),
                "status": r.status.value,
                "detail": r.detail[:DETAIL_CHARS] or None,
                "received_at": now,
            }
            for r in latest.values()
        ],
    )


# -- the hand-over side: parts recorded with the move to processing ----------------------


class EarlyReceipts:
    """The receipts that came before the parts of some hand-overs, read in one
    statement per connector: what each hand-over's outcome already is."""

    def __init__(
        self, found: dict[str, dict[str, ChannelStatus]], said: dict[str, dict[str, str]]
    ) -> None:
        self._found = found
        self._said = said

    @classmethod
    async def read(cls, conn: AsyncConnection, handovers: Iterable[Handover]) -> EarlyReceipts:
        wanted: dict[str, set[str]] = {}
        for handover in handovers:
            ids = wanted.setdefault(handover.connector, set())
            for part in handover.parts:
                ids.update(part.lookups)
        found: dict[str, dict[str, ChannelStatus]] = {}
        said: dict[str, dict[str, str]] = {}
        for connector, ids in wanted.items():
            of_connector = found.setdefault(connector, {})
            for chunk in _chunks(ids):
                rows = await conn.execute(_EARLY_ROWS, {"connector": connector, "ids": chunk})
                for smsc_id, status, detail in rows:
                    of_connector[smsc_id] = ChannelStatus(status)
                    if detail and status != ChannelStatus.DELIVERED.value:
                        said.setdefault(connector, {})[smsc_id] = detail
        return cls(found, said)

    def statuses(self, handover: Handover) -> tuple[ChannelStatus | None, ...]:
        """Each part's early receipt, or None."""
        early = self._found.get(handover.connector, {})
        return tuple(
            next((early[k] for k in part.lookups if k in early), None) for part in handover.parts
        )

    def outcome(self, handover: Handover) -> ChannelStatus | None:
        """The hand-over's outcome from early receipts alone (None: wait for more)."""
        return handover_outcome(self.statuses(handover))

    def detail(self, handover: Handover) -> str:
        """What the carrier said of the parts it did not deliver ("" when nothing)."""
        said = self._said.get(handover.connector, {})
        return "; ".join(
            next((said[k] for k in part.lookups if k in said), "")
            for part in handover.parts
            if any(k in said for k in part.lookups)
        )

    def taken_by(self, handover: Handover) -> set[str]:
        """The ids of the early receipts this hand-over's parts take."""
        early = self._found.get(handover.connector, {})
        return {k for part in handover.parts for k in part.lookups if k in early}


class HandoverBook:
    """Hand-overs written in one transaction (the dispatcher's batch): their early
    receipts are read at once, and their parts written at once."""

    def __init__(self, conn: AsyncConnection, now: float, early: EarlyReceipts) -> None:
        self._conn = conn
        self._now = now
        self.early = early
        self._rows: list[dict[str, Any]] = []
        self._consumed: dict[str, set[str]] = {}

    @classmethod
    async def open(
        cls, conn: AsyncConnection, now: float, handovers: Iterable[Handover]
    ) -> HandoverBook:
        return cls(conn, now, await EarlyReceipts.read(conn, handovers))

    def add(self, message_id: str, carrier_ref: str, handover: Handover) -> None:
        """Record the parts of a hand-over that was written (and take its early receipts)."""
        self._consumed.setdefault(handover.connector, set()).update(self.early.taken_by(handover))
        statuses = self.early.statuses(handover)
        if handover_outcome(statuses) is not None:
            return  # ended already: the message carries the outcome, no parts to keep
        for part, status in zip(handover.parts, statuses, strict=True):
            self._rows.append(
                {
                    "connector": handover.connector,
                    "smsc_id": part.key,
                    "message_id": message_id,
                    "carrier_ref": carrier_ref,
                    "parts": len(handover.parts),
                    "status": None if status is None else status.value,
                    "created_at": self._now,
                }
            )

    async def write(self) -> None:
        # A carrier may reuse an id (days later, or after a restart): the newest part wins.
        await _executemany(
            self._conn,
            _FORGET_PART,
            [{"b_connector": r["connector"], "b_id": r["smsc_id"]} for r in self._rows],
        )
        if self._rows:
            await self._conn.execute(carrier_parts.insert(), self._rows)
        await _executemany(
            self._conn,
            _FORGET_EARLY,
            [
                {"b_connector": connector, "b_id": key}
                for connector, keys in self._consumed.items()
                for key in keys
            ],
        )


async def _executemany(
    conn: AsyncConnection, statement: sa.Executable, rows: list[dict[str, Any]]
) -> None:
    if rows:
        await conn.execute(statement, rows)


def _chunks(ids: Iterable[str]) -> list[list[str]]:
    items = sorted(ids)
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]
