"""The console's search of messages and one message's records (docs/console.md, pages
2 and 3). A search is one query, newest first, paged by keyset on (created_at, id):
by id (the primary key), recipient (`ix_messages_recipient`), message list
(`ix_messages_messagelist`) or, with neither, time (`ix_messages_created`); the other
filters narrow what those find."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from batgate.store.database import Database
from batgate.store.schema import (
    accounts,
    carrier_parts,
    message_events,
    messages,
    webhook_attempts,
)

m = messages.c


@dataclass(frozen=True, slots=True)
class Filters:
    message_id: str | None = None
    recipient: str | None = None
    customer_message_id: str | None = None
    messagelist_id: int | None = None
    account_id: int | None = None
    status: str | None = None
    channel_types: tuple[str, ...] = ()  # the message types of a channel
    connector: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True, slots=True)
class Found:
    id: str
    created_at: float
    username: str
    recipient: str
    type: str
    status: str
    connector: str | None
    customer_message_id: str | None
    messagelist_id: int
    bill_micros: int | None
    bill_currency: str


@dataclass(frozen=True, slots=True)
class Part:
    connector: str
    carrier_id: str
    carrier_ref: str
    parts: int
    status: str | None
    at: float


@dataclass(frozen=True, slots=True)
class Attempt:
    event_id: int
    webhook_status: str
    state: str
    url: str | None
    at: float
    duration_ms: float | None
    status_code: int | None
    error: str | None


_FOUND = (
    m.id,
    m.created_at,
    accounts.c.username,
    m.recipient,
    m.type,
    m.status,
    m.connector,
    m.customer_message_id,
    m.messagelist_id,
    m.bill_micros,
    m.bill_currency,
)


class MessageSearch:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def search(self, f: Filters, after: tuple[float, str] | None, limit: int) -> list[Found]:
        query = _query(f).limit(limit)
        if after is not None:
            at, last = after
            query = query.where(sa.tuple_(m.created_at, m.id) < sa.tuple_(at, last))
        async with self.db.reader.connect() as conn:
            return [Found(*row) for row in await conn.execute(query)]

    async def every(self, f: Filters, most: int, page: int = 1000) -> AsyncIterator[Found]:
        """What `search` finds, page after page, up to `most` (the CSV export)."""
        after: tuple[float, str] | None = None
        given = 0
        while given < most:
            found = await self.search(f, after, min(page, most - given))
            for row in found:
                yield row
            given += len(found)
            if len(found) < page:
                return
            after = (found[-1].created_at, found[-1].id)

    async def parts(self, message_id: str) -> list[Part]:
        """The parts carriers took for the message, by hand-over, with their receipts."""
        c = carrier_parts.c
        query = (
            sa.select(c.connector, c.smsc_id, c.carrier_ref, c.parts, c.status, c.created_at)
            .where(c.message_id == message_id)
            .order_by(c.created_at, c.smsc_id)
        )
        async with self.db.reader.connect() as conn:
            return [Part(*row) for row in await conn.execute(query)]

    async def attempts(self, message_id: str) -> list[Attempt]:
        """Each webhook event of the message, with each attempt to deliver it."""
        e, a = message_events.c, webhook_attempts.c
        query = (
            sa.select(e.id, e.status, e.state, e.url, a.at, a.duration_ms, a.status_code, a.error)
            .select_from(
                message_events.outerjoin(webhook_attempts, webhook_attempts.c.event_id == e.id)
            )
            .where(e.message_id == message_id, e.state != "none")
            .order_by(e.id, a.at)
        )
        async with self.db.reader.connect() as conn:
            return [
                Attempt(i, s, st, url, at if at is not None else 0.0, d, code, err)
                for i, s, st, url, at, d, code, err in await conn.execute(query)
            ]


def _query(f: Filters) -> Any:
    query = (
        sa.select(*_FOUND)
        .join(accounts, accounts.c.id == m.account_id)
        .order_by(m.created_at.desc(), m.id.desc())
    )
    equal = {
        m.id: f.message_id,
        m.recipient: f.recipient,
        m.customer_message_id: f.customer_message_id,
        m.messagelist_id: f.messagelist_id,
        m.account_id: f.account_id,
        m.status: f.status,
        m.connector: f.connector,
    }
    for column, value in equal.items():
        if value is not None:
            query = query.where(column == value)
    if f.channel_types:
        query = query.where(m.type.in_(f.channel_types))
    if f.since is not None:
        query = query.where(m.created_at >= f.since)
    if f.until is not None:
        query = query.where(m.created_at < f.until)
    return query
