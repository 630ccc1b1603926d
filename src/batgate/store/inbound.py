"""Inbound messages and the numbers accounts own (SPEC §10): where they are kept.

What to do with an inbound message is decided before it comes here (engine.inbox:
its owner, its keyword, its auto-reply); `receive` keeps a batch of them in one
transaction with everything that follows from them: the suppression list's change,
the webhook event (through the same outbox as status events, in order per account
and sender: `domain.inbound.thread_key`), and the auto-reply as a message to send.
So a crash keeps all of it or none, and the carrier is told only after the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batgate.domain.inbound import (
    Arrival,
    StoredInbound,
    e164_of,
    thread_key,
    webhook_body,
    webhook_id,
)
from batgate.domain.optout import Keyword, Source
from batgate.store import dialects
from batgate.store.database import Database
from batgate.store.intake import insert_batches
from batgate.store.schema import (
    accounts,
    inbound_messages,
    message_events,
    messages,
    owned_numbers,
    suppressions,
)
from batgate.store.suppressions import Suppressions

_INSERT = inbound_messages.insert().returning(inbound_messages.c.id, sort_by_parameter_order=True)
_COLUMNS = (
    inbound_messages.c.id,
    inbound_messages.c.account_id,
    inbound_messages.c.sender,
    inbound_messages.c.recipient,
    inbound_messages.c.text,
    inbound_messages.c.parts,
    inbound_messages.c.incomplete,
    inbound_messages.c.connector,
    inbound_messages.c.received_at,
    inbound_messages.c.in_reply_to,
)


class NumberTaken(Exception):
    """The number is owned by another account already."""

    def __init__(self, number: str, owner: str) -> None:
        super().__init__(f"{number} is owned by account {owner!r}")
        self.owner = owner


@dataclass(frozen=True, slots=True)
class OwnedNumber:
    number: str
    created_at: float


class Inbox:
    def __init__(
        self, db: Database, new_message_id: Callable[[], str], suppressions: Suppressions
    ) -> None:
        self.db = db
        self._new_message_id = new_message_id
        self._suppressions = suppressions

    # -- who owns what ----------------------------------------------------------------

    async def owners(self, numbers: Collection[str]) -> dict[str, int]:
        """The owning account of each of `numbers` that is owned, by number."""
        if not numbers:
            return {}
        query = sa.select(owned_numbers.c.number, owned_numbers.c.account_id).where(
            owned_numbers.c.number.in_(sorted(numbers))
        )
        async with self.db.reader.connect() as conn:
            return {number: account for number, account in await conn.execute(query)}

    async def add_number(self, account_id: int, number: str, now: float) -> bool:
        """Make the account the owner of `number`; False if it owned it already.
        Raises NumberTaken when another account owns it."""
        row = {"number": number, "account_id": account_id, "created_at": now}
        insert = dialects.insert_missing(self.db.dialect, owned_numbers).returning(
            owned_numbers.c.number
        )
        async with self.db.writer.begin() as conn:
            if (await conn.execute(insert, [row])).first() is not None:
                return True
            owner = (
                await conn.execute(
                    sa.select(owned_numbers.c.account_id, accounts.c.username)
                    .join(accounts, accounts.c.id == owned_numbers.c.account_id)
                    .where(owned_numbers.c.number == number)
                )
            ).one()
        if owner.account_id != account_id:
            raise NumberTaken(number, owner.username)
        return False

    async def remove_number(self, account_id: int, number: str) -> bool:
        delete = owned_numbers.delete().where(
            owned_numbers.c.account_id == account_id, owned_numbers.c.number == number
        )
        async with self.db.writer.begin() as conn:
            return bool((await conn.execute(delete)).rowcount)

    async def owners_numbers(self) -> dict[int, list[str]]:
        """Every owned number by its account, in number order."""
        query = sa.select(owned_numbers.c.account_id, owned_numbers.c.number).order_by(
            owned_numbers.c.number
        )
        found: dict[int, list[str]] = {}
        async with self.db.reader.connect() as conn:
            for account_id, number in await conn.execute(query):
                found.setdefault(int(account_id), []).append(number)
        return found

    async def numbers(self, account_id: int) -> list[OwnedNumber]:
        query = (
            sa.select(owned_numbers.c.number, owned_numbers.c.created_at)
            .where(owned_numbers.c.account_id == account_id)
            .order_by(owned_numbers.c.number)
        )
        async with self.db.reader.connect() as conn:
            return [OwnedNumber(*row) for row in await conn.execute(query)]

    # -- inbound messages -------------------------------------------------------------

    async def receive(
        self, arrivals: Sequence[Arrival], now: float, replies_since: float
    ) -> list[StoredInbound]:
        """Keep them, all or none, with their events, opt-out changes and auto-replies.
        `replies_since`: how far back `inReplyTo` looks for the account's message."""
        if not arrivals:
            return []
        async with self.db.writer.begin() as conn:
            answered = [await _answered(conn, a, replies_since) for a in arrivals]
            rows = [_row(a, now, reply) for a, reply in zip(arrivals, answered, strict=True)]
            ids = list((await conn.execute(_INSERT, rows)).scalars())
            stored = [_stored(i, row) for i, row in zip(ids, rows, strict=True)]
            await _opt_outs(conn, self.db.dialect, arrivals, now)
            await _events(conn, stored, now)
            replies = [(a.account, [a.reply], now) for a in arrivals if a.account and a.reply]
            if replies:
                await insert_batches(conn, replies, self._new_message_id)
        for arrival in arrivals:
            if arrival.account is not None and arrival.keyword is not None:
                self._suppressions.changed(
                    arrival.account.id, True if arrival.keyword is Keyword.OPT_OUT else None
                )
        return stored

    async def page(self, account_id: int | None, after: int, limit: int) -> list[StoredInbound]:
        """The account's inbound messages (None: the unrouted ones) after id `after`,
        oldest first."""
        owner = (
            inbound_messages.c.account_id.is_(None)
            if account_id is None
            else inbound_messages.c.account_id == account_id
        )
        query = (
            sa.select(*_COLUMNS)
            .where(owner, inbound_messages.c.id > after)
            .order_by(inbound_messages.c.id)
            .limit(limit)
        )
        async with self.db.reader.connect() as conn:
            return [_from_row(row) for row in await conn.execute(query)]

    async def latest(self, limit: int) -> list[tuple[StoredInbound, str | None]]:
        """The latest inbound messages of every account and the unrouted, newest
        first, each with its account's username (None: unrouted)."""
        query = (
            sa.select(*_COLUMNS, accounts.c.username)
            .outerjoin(accounts, accounts.c.id == inbound_messages.c.account_id)
            .order_by(inbound_messages.c.id.desc())
            .limit(limit)
        )
        async with self.db.reader.connect() as conn:
            return [(_from_row(row), row.username) for row in await conn.execute(query)]


async def _answered(conn: AsyncConnection, arrival: Arrival, since: float) -> str | None:
    """The account's latest message to the sender since `since`: what this answers."""
    number = e164_of(arrival.text.sender)
    if arrival.account is None or number is None:
        return None
    query = (
        sa.select(messages.c.id)
        .where(
            messages.c.recipient == number,
            messages.c.created_at >= since,
            messages.c.account_id == arrival.account.id,
        )
        .order_by(messages.c.created_at.desc())
        .limit(1)
    )
    found: str | None = (await conn.execute(query)).scalar()
    return found


def _row(arrival: Arrival, now: float, in_reply_to: str | None) -> dict[str, Any]:
    text = arrival.text
    return {
        "account_id": None if arrival.account is None else arrival.account.id,
        "sender": text.sender[:32],
        "recipient": text.recipient[:32],
        "text": text.text,
        "parts": text.parts,
        "incomplete": text.incomplete,
        "connector": arrival.connector,
        "carrier_id": None if text.carrier_id is None else text.carrier_id[:65],
        "received_at": now,
        "in_reply_to": in_reply_to,
    }


def _from_row(row: Any) -> StoredInbound:
    return StoredInbound(
        row.id,
        row.account_id,
        row.sender,
        row.recipient,
        row.text,
        row.parts,
        bool(row.incomplete),
        row.connector,
        row.received_at,
        row.in_reply_to,
    )


def _stored(inbound_id: int, row: dict[str, Any]) -> StoredInbound:
    return StoredInbound(
        inbound_id,
        row["account_id"],
        row["sender"],
        row["recipient"],
        row["text"],
        row["parts"],
        row["incomplete"],
        row["connector"],
        row["received_at"],
        row["in_reply_to"],
    )


async def _opt_outs(
    conn: AsyncConnection, dialect: str, arrivals: Sequence[Arrival], now: float
) -> None:
    """The keywords' changes to the senders' suppression (SPEC §11), in order."""
    for arrival in arrivals:
        number = e164_of(arrival.text.sender)
        if arrival.account is None or arrival.keyword is None or number is None:
            continue
        account_id = arrival.account.id
        if arrival.keyword is Keyword.OPT_OUT:
            row = {"account_id": account_id, "number": number}
            row |= {"source": Source.KEYWORD.value, "created_at": now}
            await conn.execute(dialects.insert_missing(dialect, suppressions), [row])
        else:
            await conn.execute(
                suppressions.delete().where(
                    suppressions.c.account_id == account_id, suppressions.c.number == number
                )
            )


async def _events(conn: AsyncConnection, stored: Sequence[StoredInbound], now: float) -> None:
    """A webhook event for each owned one whose account has a webhook URL now."""
    owners = {m.account_id for m in stored if m.account_id is not None}
    if not owners:
        return
    hooked = set(
        (
            await conn.execute(
                sa.select(accounts.c.id).where(
                    accounts.c.id.in_(sorted(owners)), accounts.c.webhook_url.is_not(None)
                )
            )
        ).scalars()
    )
    rows = []
    for m in stored:
        if m.account_id is None or m.account_id not in hooked:
            continue
        rows.append(
            {
                "message_id": thread_key(m.account_id, m.sender),
                "account_id": m.account_id,
                "status": "inbound",
                "at": now,
                "payload": webhook_body(m).decode(),
                "url": None,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "webhook_id": webhook_id(m.id),
            }
        )
    if rows:
        await conn.execute(message_events.insert(), rows)
