"""The store: the only code that speaks SQL. Rows go in and out as domain objects."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batgate.domain import rollup
from batgate.domain.documents import encoded, status_document, status_view
from batgate.domain.lifecycle import Transition, on_receipt_heard
from batgate.domain.messages import NewMessage
from batgate.domain.notifications import Notification
from batgate.domain.outcomes import Handover
from batgate.domain.pricing import Rate, from_micros
from batgate.domain.records import Account, MessageRecord, StoryLine
from batgate.domain.status import DeliveryStatus
from batgate.store import dialects, handovers
from batgate.store.cancellation import Cancellation
from batgate.store.carrier_costs import CarrierCosts
from batgate.store.connectors import ConnectorBoard
from batgate.store.database import Database
from batgate.store.gauges import Gauges
from batgate.store.idempotency import (
    CLAIM_ATTEMPTS,
    Idempotency,
    KeyTaken,
    claim_key,
    keep_answer,
    note_stored,
    replay,
)
from batgate.store.inbound import Inbox
from batgate.store.intake import Intake, insert_batches
from batgate.store.message_search import MessageSearch
from batgate.store.operators import Operators
from batgate.store.outbox import Outbox
from batgate.store.ratebuckets import RateBuckets
from batgate.store.retention import Retention
from batgate.store.rollups import Rollups
from batgate.store.rows import (
    MessageRow,
    account_from_row,
    event_row,
    message_from_row,
    progress_values,
)
from batgate.store.schema import (
    accounts,
    carrier_costs,
    message_events,
    message_notes,
    message_rollup,
    messagelists,
    messages,
    rates,
)
from batgate.store.shared_reads import SharedReads
from batgate.store.suppressions import Suppressions
from batgate.store.upstream_journal import UpstreamJournal

log = logging.getLogger(__name__)

# Ids per IN-list: far below SQLite's (32,766) and asyncpg's (32,767) bound parameters.
_IN_LIST = 1000

_BY_ID = sa.select(messages).where(messages.c.id == sa.bindparam("id"))
# PostgreSQL's status documents of many ids at once (store.shared_reads).
_DOCS_BY_IDS_PG = "SELECT id, account_id, status_doc FROM messages WHERE id = ANY($1::varchar[])"
_DOC_BY_ID = sa.select(messages.c.account_id, messages.c.status_doc).where(
    messages.c.id == sa.bindparam("id")
)


class DuplicateAccountError(Exception):
    """An account with this username exists already."""


def new_message_id() -> str:
    """22 hex digits: milliseconds since the epoch, then 40 random bits.

    Time-ordered, so inserts append to the primary-key index instead of landing
    all over it; unique across processes without asking the database.
    """
    return f"{int(time.time() * 1000):012x}{os.urandom(5).hex()}"


@dataclass(frozen=True, slots=True)
class MessagelistPage:
    """One page of a message list: the counts of the whole list, some of its messages."""

    counts: dict[str, tuple[int, int]]  # per status: (messages, billed micros)
    records: list[MessageRecord]  # in id order
    more: bool  # messages follow the last of `records`


@dataclass(frozen=True, slots=True)
class Change:
    """One message's planned write: a transition (None: just give the claim back)."""

    record: MessageRecord
    transition: Transition | None
    priced: Priced | None = None
    notifications: tuple[Notification, ...] = ()
    # The parts a carrier took, recorded with the move (receipts are matched to them).
    handover: Handover | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    """A stored send: its message list and ids. A replay (a key seen before) has
    `replayed`: the answer kept with the key, or b"" while it is not kept yet."""

    messagelist_id: int
    message_ids: list[str]
    replayed: bytes | None = None


@dataclass(frozen=True, slots=True)
class Priced:
    """The rate locked in when a step is handed to its channel, and the final bill."""

    rate_micros: int | None
    rate_currency: str | None
    bill_micros: int | None


class Store:
    """The store's one door: messages, accounts and rates here, and its named parts —
    `outbox` (webhook events), `receipts` (carriers' receipts), `rate_buckets`,
    `retention`, `gauges`, `connectors` (switches and reports), `carrier_costs`,
    `upstream_journal`, `suppressions` (the accounts' opt-out lists) — for the rest.
    Nothing outside store/ speaks SQL or holds a connection.

    `suppression_cache_seconds`: how long this store remembers whether an account has
    a suppression list (store.suppressions)."""

    def __init__(self, db: Database, suppression_cache_seconds: float = 1.0) -> None:
        self.db = db
        self.outbox = Outbox(db)
        self.rate_buckets = RateBuckets(db)
        self.receipts = handovers.Receipts(db)
        self.retention = Retention(db)
        self.connectors = ConnectorBoard(db)
        self.carrier_costs = CarrierCosts(db)
        self.upstream_journal = UpstreamJournal(db)
        self.suppressions = Suppressions(db, suppression_cache_seconds)
        self.cancellation = Cancellation(db)
        self.inbox = Inbox(db, new_message_id, self.suppressions)
        self.operators = Operators(db)
        self.rollups = Rollups(db)
        self.search = MessageSearch(db)
        self.gauges = Gauges(db)
        self._intake = Intake(db, new_message_id)
        # The hot status read, on SQLite: see Database.lookup and point_read.
        self._read_by_id = db.point_read(_BY_ID) if db.lookup is not None else None
        self._fetch_by_id = db.point_read_async(_BY_ID) if db.fast is not None else None
        # The hottest read of all: a status document by primary key, answered as stored.
        self._read_doc = db.point_read(_DOC_BY_ID) if db.lookup is not None else None
        # PostgreSQL: the lookups of one turn of the event loop share one query.
        self._fetch_doc = (
            SharedReads(db.fast.many_reader(_DOCS_BY_IDS_PG)).read if db.fast is not None else None
        )
        self._due_peek = db.peek(dialects.due_peek(db.dialect))

    @classmethod
    def connect(
        cls,
        url: str,
        pool_size: int = 8,
        max_overflow: int = 0,
        suppression_cache_seconds: float = 1.0,
    ) -> Store:
        """A store on `url`; the pool sizes apply to PostgreSQL (SQLite's are fixed)."""
        database = Database.connect(url, pool_size=pool_size, max_overflow=max_overflow)
        return cls(database, suppression_cache_seconds)

    async def close(self) -> None:
        await self.db.dispose()

    async def upgrade(self) -> None:
        await self.db.upgrade()

    # -- accounts -------------------------------------------------------------

    async def create_account(
        self,
        username: str,
        api_key_hash: str,
        password_hash: str | None,
        webhook_url: str | None,
        webhook_secret: str,
        currency: str,
    ) -> Account:
        values = {
            "username": username,
            "api_key_hash": api_key_hash,
            "password_hash": password_hash,
            "webhook_url": webhook_url,
            "webhook_secret": webhook_secret,
            "currency": currency,
            "disabled": False,
            "created_at": time.time(),
        }
        try:
            async with self.db.writer.begin() as conn:
                row = (
                    await conn.execute(accounts.insert().values(values).returning(*accounts.c))
                ).one()
        except sa.exc.IntegrityError as exc:
            raise DuplicateAccountError(username) from exc
        return account_from_row(row)

    async def account_by_key_hash(self, key_hash: str) -> Account | None:
        return await self._one_account(accounts.c.api_key_hash == key_hash)

    async def account_by_username(self, username: str) -> Account | None:
        return await self._one_account(accounts.c.username == username)

    async def account_by_id(self, account_id: int) -> Account | None:
        return await self._one_account(accounts.c.id == account_id)

    async def list_accounts(self) -> list[Account]:
        async with self.db.reader.connect() as conn:
            result = await conn.execute(sa.select(accounts).order_by(accounts.c.id))
            return [account_from_row(row) for row in result]

    async def update_account(self, username: str, **values: Any) -> Account | None:
        async with self.db.writer.begin() as conn:
            row = (
                await conn.execute(
                    accounts.update()
                    .where(accounts.c.username == username)
                    .values(**values)
                    .returning(*accounts.c)
                )
            ).one_or_none()
        return None if row is None else account_from_row(row)

    async def rotate_webhook_secret(
        self, username: str, secret: str, previous_until: float
    ) -> Account | None:
        """New secret; the old one stays valid for signing until `previous_until`."""
        async with self.db.writer.begin() as conn:
            row = (
                await conn.execute(
                    accounts.update()
                    .where(accounts.c.username == username)
                    .values(
                        previous_webhook_secret=accounts.c.webhook_secret,
                        previous_secret_until=previous_until,
                        webhook_secret=secret,
                    )
                    .returning(*accounts.c)
                )
            ).one_or_none()
        return None if row is None else account_from_row(row)

    async def _one_account(self, where: sa.ColumnElement[bool]) -> Account | None:
        query = sa.select(accounts).where(where)
        if self.db.lookup is not None:  # a point read: see Database.lookup
            row = self.db.lookup.execute(query).one_or_none()
        else:
            async with self.db.reader.connect() as conn:
                row = (await conn.execute(query)).one_or_none()
        return None if row is None else account_from_row(row)

    # -- messages -------------------------------------------------------------

    async def insert_batch(
        self, account: Account, batch: Sequence[NewMessage], now: float
    ) -> tuple[int, list[str]]:
        """Store a batch (the one way in, `send`, without a key): its list id and ids."""
        sent = await self.send(account, batch, now)
        return sent.messagelist_id, sent.message_ids

    @property
    def taking_sends(self) -> bool:
        """This process's API is storing sends right now (see batgate.store.intake)."""
        return self._intake.busy

    async def send(
        self,
        account: Account,
        batch: Sequence[NewMessage],
        now: float,
        idempotency: Idempotency | None = None,
    ) -> Sent:
        """Store a batch in one transaction: its message list id and message ids (the
        caller renders its answer after, and keeps it with the key: `keep_answer`).

        Without a key, concurrent sends share a transaction (store.intake). With a key
        seen for this account within its window, nothing is stored: what it stored
        comes back, with its answer once kept; the same key with another body raises
        IdempotencyConflict. Safe under concurrent duplicates: the key is claimed
        before the batch is stored, so of two transactions with one key the second
        waits for the first (PostgreSQL: on the unique index; SQLite: on the write
        lock), and a loser rolls back and gets the winner's.
        """
        if idempotency is None:
            list_id, ids = await self._intake.store(account, batch, now)
            return Sent(list_id, ids)
        attempt = 1
        while True:
            try:
                return await self._send_once(account, batch, now, idempotency)
            except KeyTaken as taken:
                if attempt >= CLAIM_ATTEMPTS:
                    raise taken.error from None
            # Another request stored the same key between our look and our claim.
            log.info("Idempotency-Key taken by a concurrent request; replaying its answer")
            attempt += 1

    async def _send_once(
        self, account: Account, batch: Sequence[NewMessage], now: float, key: Idempotency
    ) -> Sent:
        async with self.db.writer.begin() as conn:
            seen = await replay(conn, account.id, key, now)
            if seen is not None:
                return Sent(seen.messagelist_id, seen.message_ids, replayed=seen.answer or b"")
            await claim_key(conn, account.id, key, now)
            [(list_id, ids)] = await insert_batches(conn, [(account, batch, now)], new_message_id)
            await note_stored(conn, account.id, key, list_id, ids)
        return Sent(list_id, ids)

    async def keep_answer(self, account: Account, key: Idempotency, answer: bytes) -> None:
        """Keep the answer rendered for a key's send, for its replays."""
        async with self.db.writer.begin() as conn:
            await keep_answer(conn, account.id, key, answer)

    async def messagelist_summary(
        self, account_id: int, messagelist_id: int
    ) -> dict[str, tuple[int, int]] | None:
        """Per status: (messages, billed micros) of the account's list; None if not theirs."""
        async with self.db.reader.connect() as conn:
            return await _list_counts(conn, account_id, messagelist_id)

    async def messagelist_page(
        self, account_id: int, messagelist_id: int, *, after: str | None, limit: int
    ) -> MessagelistPage | None:
        """The account's list: counts of all its messages, and `limit` of them in id order
        after the id `after` (keyset paging on the (messagelist_id, id) index); None if the
        list is not theirs. Both are read in one transaction (on SQLite: one snapshot)."""
        query = (
            sa.select(messages)
            .where(messages.c.messagelist_id == messagelist_id)
            .where(messages.c.account_id == account_id)
            .order_by(messages.c.id)
            .limit(limit + 1)
        )
        if after is not None:
            query = query.where(messages.c.id > after)
        async with self.db.reader.connect() as conn:
            counts = await _list_counts(conn, account_id, messagelist_id)
            if counts is None:
                return None
            rows = (await conn.execute(query)).all()
        records = [message_from_row(row) for row in rows[:limit]]
        return MessagelistPage(counts, records, more=len(rows) > limit)

    async def get_message(self, message_id: str) -> MessageRecord | None:
        if self._read_by_id is not None:
            found = self._read_by_id(message_id)
            return None if found is None else message_from_row(MessageRow(*found))
        if self._fetch_by_id is not None:
            fetched = await self._fetch_by_id(message_id)
            return None if fetched is None else message_from_row(MessageRow(*fetched))
        async with self.db.reader.connect() as conn:
            row = (await conn.execute(_BY_ID, {"id": message_id})).one_or_none()
        return None if row is None else message_from_row(row)

    @property
    def reads_now(self) -> bool:
        """Whether `status_document_now` can read (SQLite's synchronous lookup)."""
        return self._read_doc is not None

    def status_document_now(self, message_id: str) -> tuple[int, bytes] | None | Literal[False]:
        """`status_document` read at once, without waiting, on SQLite's synchronous
        lookup connection; False where there is none (PostgreSQL: await
        `status_document`)."""
        if self._read_doc is None or self._read_by_id is None:
            return False
        found = self._read_doc(message_id)
        if found is None:
            return None
        account_id, document = found
        if document is None:  # stored before migration 0009, not changed since
            row = self._read_by_id(message_id)
            if row is None:
                return None
            document = encoded(status_view(message_from_row(MessageRow(*row))))
        return int(account_id), document.encode()

    async def status_document(self, message_id: str) -> tuple[int, bytes] | None:
        """The message's account and its status document as stored (one read by
        primary key, no assembly); None for an unknown id."""
        if self._read_doc is not None:
            found = self._read_doc(message_id)
        elif self._fetch_doc is not None:
            found = await self._fetch_doc(message_id)
        else:
            async with self.db.reader.connect() as conn:
                row = (await conn.execute(_DOC_BY_ID, {"id": message_id})).one_or_none()
            found = None if row is None else tuple(row)
        if found is None:
            return None
        account_id, document = found
        if document is None:  # stored before migration 0009, not changed since
            record = await self.get_message(message_id)
            if record is None:
                return None
            document = encoded(status_view(record))
        return int(account_id), document.encode()

    async def status_documents(
        self, account_id: int, message_ids: Sequence[str]
    ) -> dict[str, bytes]:
        """The account's messages among `message_ids` by id: their status documents as
        stored (others' and unknown ids are missing), one IN-list read per 1000 ids."""
        wanted = list(dict.fromkeys(message_ids))
        found: dict[str, bytes] = {}
        legacy: list[str] = []
        async with self.db.reader.connect() as conn:
            for start in range(0, len(wanted), _IN_LIST):
                chunk = wanted[start : start + _IN_LIST]
                rows = await conn.execute(
                    sa.select(messages.c.id, messages.c.status_doc).where(
                        messages.c.id.in_(chunk), messages.c.account_id == account_id
                    )
                )
                for message_id, document in rows:
                    if document is None:
                        legacy.append(message_id)
                    else:
                        found[message_id] = document.encode()
        if legacy:
            for message_id, record in (await self.messages_of(account_id, legacy)).items():
                found[message_id] = encoded(status_view(record)).encode()
        return found

    async def messages_of(
        self, account_id: int | None, message_ids: Iterable[str]
    ) -> dict[str, MessageRecord]:
        """The account's messages among `message_ids` (any account's with None), by id;
        others' and unknown ids are missing. One query per 1000 distinct ids (an
        IN-list), not a read per id."""
        wanted = list(dict.fromkeys(message_ids))
        found: dict[str, MessageRecord] = {}
        async with self.db.reader.connect() as conn:
            for start in range(0, len(wanted), _IN_LIST):
                chunk = wanted[start : start + _IN_LIST]
                query = sa.select(messages).where(messages.c.id.in_(chunk))
                if account_id is not None:
                    query = query.where(messages.c.account_id == account_id)
                result = await conn.execute(query)
                found.update((row.id, message_from_row(row)) for row in result)
        return found

    async def anything_due(self, now: float) -> bool:
        """Whether `claim_due` at `now` could take a message. A read without a lock:
        an idle engine's poll costs ~30 µs instead of a write transaction's ~2 ms."""
        return await self._due_peek(now)

    async def claim_due(
        self, worker: str, now: float, lease: float, limit: int
    ) -> list[MessageRecord]:
        stmt = dialects.claim_due(self.db.dialect, worker, now, now + lease, limit)
        async with self.db.writer.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return [message_from_row(row, row.previous_claim) for row in rows]

    async def apply(
        self,
        record: MessageRecord,
        transition: Transition,
        now: float,
        priced: Priced | None = None,
        notifications: Sequence[Notification] | None = None,
    ) -> bool:
        """Compare-and-set one change; see :meth:`apply_all`."""
        if notifications is None:
            notifications = [Notification(status) for status in transition.entered]
        change = Change(record, transition, priced, tuple(notifications))
        return (await self.apply_all([change], now))[0]

    async def apply_all(self, changes: Sequence[Change], now: float) -> list[bool]:
        """Write many changes in one transaction, each a compare-and-set on its version.

        A change whose message moved on since it was read (another worker, a late
        receipt) is skipped: False in its place. Each status change commits with
        its events (the history and the webhook outbox). A change without a
        transition gives the claimed message back untouched.
        """
        changes = list(changes)  # a change whose receipts came first is noted in its place
        results: list[bool] = []
        events: list[dict[str, Any]] = []
        notes: list[dict[str, Any]] = []
        hooks: dict[int, bool] = {}
        async with self.db.writer.begin() as conn:
            book = await _handover_book(conn, changes, now)
            statements = []
            for i, change in enumerate(changes):
                handover, transition = change.handover, change.transition
                if book is not None and handover is not None and transition is not None:
                    outcome = book.early.outcome(handover)
                    progress = transition.progress
                    heard = None
                    if outcome is not None:
                        detail = book.early.detail(handover)
                        ref = progress.carrier_ref
                        heard = on_receipt_heard(progress, outcome, ref, now, detail)
                    if heard is not None:
                        # Its receipts came first (after the engine looked): noted with
                        # the move, due at once (engine.receipts applies it).
                        both = transition.then(heard)
                        change = changes[i] = replace(change, transition=both)
                statements.append(_change_statement(change, now))
            written = await _compare_and_set(conn, statements, changes, now)
            for change, ok in zip(changes, written, strict=True):
                transition = change.transition
                results.append(ok and transition is not None)
                if ok and book is not None and change.handover is not None and transition:
                    book.add(
                        change.record.id, transition.progress.carrier_ref or "", change.handover
                    )
                if ok and transition is not None and transition.notes:
                    notes += handovers.note_rows(change.record, transition.notes, now)
                if ok and change.notifications:
                    account_id = change.record.account_id
                    if account_id not in hooks:
                        hooks[account_id] = await _has_webhook(conn, account_id)
                    noted = transition.notes if transition is not None else ()
                    reason = noted[-1].reason if noted else None
                    events += [
                        event_row(change.record, n, now, hooks[account_id], reason)
                        for n in change.notifications
                    ]
            if book is not None:
                await book.write()
            await _roll_up(conn, self.db.dialect, changes, written, now)
            if events:
                await conn.execute(message_events.insert(), events)
            if notes:
                await conn.execute(message_notes.insert(), notes)
        return results

    async def accounts_by_ids(self, ids: Iterable[int]) -> dict[int, Account]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        async with self.db.reader.connect() as conn:
            result = await conn.execute(sa.select(accounts).where(accounts.c.id.in_(wanted)))
            return {row.id: account_from_row(row) for row in result}

    async def release(self, record: MessageRecord) -> None:
        """Give a claimed message back untouched (nothing was due after all)."""
        await self.apply_all([Change(record, None)], time.time())

    async def events_of(self, message_id: str) -> list[tuple[DeliveryStatus, float]]:
        async with self.db.reader.connect() as conn:
            result = await conn.execute(
                sa.select(message_events.c.status, message_events.c.at)
                .where(message_events.c.message_id == message_id)
                .order_by(message_events.c.id)
            )
            return [(DeliveryStatus(status), at) for status, at in result]

    async def story(self, message_id: str) -> list[StoryLine]:
        """What happened to a message, in order: each status it entered (with the reason
        of a final one), each attempt that failed and each step that ended, and why."""
        async with self.db.reader.connect() as conn:
            events = await conn.execute(
                sa.select(message_events.c.at, message_events.c.status, message_events.c.reason)
                .where(message_events.c.message_id == message_id)
                .order_by(message_events.c.id)
            )
            lines = [StoryLine(at, status, None, None, reason) for at, status, reason in events]
            notes = await conn.execute(
                sa.select(
                    message_notes.c.at,
                    message_notes.c.step,
                    message_notes.c.channel,
                    message_notes.c.reason,
                )
                .where(message_notes.c.message_id == message_id)
                .order_by(message_notes.c.id)
            )
            lines += [StoryLine(at, None, step, channel, why) for at, step, channel, why in notes]
            costs = await conn.execute(
                sa.select(
                    carrier_costs.c.at,
                    carrier_costs.c.step,
                    carrier_costs.c.connector,
                    carrier_costs.c.micros,
                    carrier_costs.c.currency,
                ).where(carrier_costs.c.message_id == message_id)
            )
            lines += [
                StoryLine(at, None, step, None, f"carrier cost: {from_micros(m)} {cur} ({name})")
                for at, step, name, m, cur in costs
            ]
        # A final status and the note of its last step are written together: the note first.
        return sorted(lines, key=lambda line: (line.at, line.status is not None))

    # -- rates ----------------------------------------------------------------

    async def list_rates(self) -> list[Rate]:
        async with self.db.reader.connect() as conn:
            result = await conn.execute(sa.select(rates).order_by(rates.c.channel, rates.c.prefix))
            return [Rate(r.channel, r.prefix, r.micros, r.currency) for r in result]

    async def set_rate(self, rate: Rate) -> None:
        async with self.db.writer.begin() as conn:
            where = (rates.c.channel == rate.channel) & (rates.c.prefix == rate.prefix)
            await conn.execute(rates.delete().where(where))
            await conn.execute(
                rates.insert().values(
                    channel=rate.channel,
                    prefix=rate.prefix,
                    micros=rate.micros,
                    currency=rate.currency,
                    updated_at=time.time(),
                )
            )


async def _handover_book(
    conn: AsyncConnection, changes: Sequence[Change], now: float
) -> handovers.HandoverBook | None:
    """The hand-overs among `changes`, with the receipts that came before them."""
    found = [c.handover for c in changes if c.handover is not None and c.transition is not None]
    if not found:
        return None
    return await handovers.HandoverBook.open(conn, now, found)


async def _compare_and_set(
    conn: AsyncConnection,
    statements: Sequence[tuple[sa.Update, dict[str, Any]]],
    changes: Sequence[Change],
    now: float,
) -> list[bool]:
    """Run the changes' compare-and-set UPDATEs, one executemany per statement shape;
    which of them were written.

    When an executemany's row count says some did not match (another worker or a
    receipt moved the message on — rare), or the driver does not count (asyncpg),
    the moves are read back: a move was written when its row now has the version
    after the one it read and this write's `updated_at`.
    """
    written = [False] * len(statements)
    groups: dict[int, tuple[sa.Update, list[int]]] = {}
    for index, (statement, _params) in enumerate(statements):
        groups.setdefault(id(statement), (statement, []))[1].append(index)
    unsure: list[int] = []
    for statement, indices in groups.values():
        rows = [statements[i][1] for i in indices]
        count = (await conn.execute(statement, rows[0] if len(rows) == 1 else rows)).rowcount
        if count == len(rows):
            for i in indices:
                written[i] = True
        elif len(rows) == 1:
            written[indices[0]] = False
        else:
            unsure += [i for i in indices if changes[i].transition is not None]
    if unsure:
        ids = [changes[i].record.id for i in unsure]
        found = {
            row.id: (row.version, row.updated_at)
            for row in await conn.execute(
                sa.select(messages.c.id, messages.c.version, messages.c.updated_at).where(
                    messages.c.id.in_(ids)
                )
            )
        }
        for i in unsure:
            record = changes[i].record
            written[i] = found.get(record.id) == (record.version + 1, now)
    return written


def _cas(columns: Sequence[str]) -> sa.Update:
    """A compare-and-set UPDATE of `columns`, built once: executing a prepared
    statement with new values is far cheaper than building one per message."""
    return (
        messages.update()
        .where(messages.c.id == sa.bindparam("b_id"))
        .where(messages.c.version == sa.bindparam("b_version"))
        .values({name: sa.bindparam(f"v_{name}") for name in columns})
    )


_PROGRESS = (
    "status",
    "step",
    "steps",
    "attempts",
    "due_at",
    "deadline",
    "receipt",
    "carrier_ref",
    "connector",
    "version",
    "updated_at",
    "claimed_by",
    "claimed_until",
    "status_doc",
)
_PRICE = ("rate_micros", "rate_currency", "bill_micros")
_MOVE = _cas(_PROGRESS)
_MOVE_PRICED = _cas(_PROGRESS + _PRICE)
_RELEASE = _cas(("claimed_by", "claimed_until"))


def _change_statement(change: Change, now: float) -> tuple[sa.Update, dict[str, Any]]:
    record = change.record
    params: dict[str, Any] = {"b_id": record.id, "b_version": record.version}
    if change.transition is None:
        return _RELEASE, params | {"v_claimed_by": None, "v_claimed_until": None}
    progress = change.transition.progress
    values = progress_values(progress)
    values.update(version=record.version + 1, updated_at=now, claimed_by=None)
    values["claimed_until"] = None
    priced = change.priced
    rate, rate_currency, bill = record.rate_micros, record.rate_currency, record.bill_micros
    if priced is not None:
        rate, rate_currency, bill = priced.rate_micros, priced.rate_currency, priced.bill_micros
        values.update(rate_micros=rate, rate_currency=rate_currency, bill_micros=bill)
    document = status_document(
        record.messagelist_id,
        record.id,
        record.customer_message_id,
        record.to,
        record.type,
        record.chain,
        progress,
        rate,
        rate_currency,
        bill,
        record.bill_currency,
    )
    values["status_doc"] = encoded(document)
    params.update({f"v_{name}": value for name, value in values.items()})
    return (_MOVE if priced is None else _MOVE_PRICED), params


async def _list_counts(
    conn: AsyncConnection, account_id: int, messagelist_id: int
) -> dict[str, tuple[int, int]] | None:
    owner = (
        await conn.execute(
            sa.select(messagelists.c.account_id).where(messagelists.c.id == messagelist_id)
        )
    ).scalar_one_or_none()
    if owner != account_id:
        return None
    rows = await conn.execute(
        sa.select(
            messages.c.status,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(messages.c.bill_micros), 0),
        )
        .where(messages.c.messagelist_id == messagelist_id)
        .group_by(messages.c.status)
    )
    return {status: (int(count), int(billed)) for status, count, billed in rows}


_ROLLUP_KEYS = ["scale", "slot", "account_id", "channel", "connector", "status", "bucket"]


async def _roll_up(
    conn: AsyncConnection,
    dialect: str,
    changes: Sequence[Change],
    written: Sequence[bool],
    now: float,
) -> None:
    """Count the messages these changes made final (domain.rollup), in their transaction."""
    keys = [
        rollup.key_of(change.record, change.transition.progress, now)
        for change, ok in zip(changes, written, strict=True)
        if ok
        and change.transition is not None
        and change.transition.progress.status.is_final
        and not change.record.progress.status.is_final
    ]
    if not keys:
        return
    rows = [
        {
            "scale": scale,
            "slot": slot,
            "account_id": k.account_id,
            "channel": k.channel,
            "connector": k.connector,
            "status": k.status,
            "bucket": k.bucket,
            "count": n,
        }
        for scale, counted in (("m", rollup.summed(keys)), ("h", rollup.by_hour(keys)))
        for k, n in counted.items()
        for slot in ((k.minute if scale == "m" else k.minute // 60),)
    ]
    await conn.execute(dialects.add_counts(dialect, message_rollup, _ROLLUP_KEYS), rows)


async def _has_webhook(conn: AsyncConnection, account_id: int) -> bool:
    """Whether the account has a webhook URL now, read in the writing transaction.

    So an event is pending exactly when, at its commit, there was somewhere to
    send it: `accounts set-webhook` takes effect with the very next change.
    """
    url = await conn.scalar(sa.select(accounts.c.webhook_url).where(accounts.c.id == account_id))
    return bool(url)
