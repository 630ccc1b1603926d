"""SQL that differs by dialect: claiming due work in one statement, upserts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from batgate.store.schema import accounts, message_events, messages


def claim_due(dialect: str, worker: str, now: float, lease_until: float, limit: int) -> sa.Update:
    """Lease up to `limit` due messages to `worker` and return them, in one statement.

    PostgreSQL skips rows another worker has locked; SQLite has one writer at a
    time, so the plain subquery is already exclusive.

    A message still claimed by someone (`claimed_by` set, its lease run out) was
    claimed and never written back: its worker died, or gave up on it, maybe after
    handing it to a carrier. Such a claim counts in `reclaims`, and each row comes
    back with `previous_claim`, the worker whose lease ran out (None for a fresh
    claim). The due rows are materialised first, so `previous_claim` is their value
    before this update on both dialects (SQLite's RETURNING sees only new values).
    """
    due = (
        # Names of their own: SQLite's RETURNING takes no table prefixes, so a bare
        # `id` there must mean the updated row.
        sa.select(messages.c.id.label("due_id"), messages.c.claimed_by.label("previous"))
        .where(
            messages.c.due_at.is_not(None),
            messages.c.due_at <= now,
            sa.or_(messages.c.claimed_until.is_(None), messages.c.claimed_until < now),
        )
        .order_by(messages.c.due_at)
        .limit(limit)
    )
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    taken = due.cte("due").prefix_with("MATERIALIZED")
    previous = sa.select(taken.c.previous).where(taken.c.due_id == messages.c.id).scalar_subquery()
    reclaimed = sa.case((messages.c.claimed_by.is_not(None), 1), else_=0)
    return (
        sa.update(messages)
        .where(messages.c.id.in_(sa.select(taken.c.due_id)))
        .values(
            claimed_by=worker, claimed_until=lease_until, reclaims=messages.c.reclaims + reclaimed
        )
        .returning(*messages.c, previous.label("previous_claim"))
    )


def claim_webhooks(
    dialect: str,
    worker: str,
    now: float,
    lease_until: float,
    limit: int,
    skip_accounts: Sequence[int] = (),
) -> sa.Update:
    """Lease up to `limit` due webhook events, in order within each message.

    An event waits while an earlier event of its message is still pending, and
    while its account's endpoint is disabled (unless it goes to a callbackUrl).
    """
    earlier = message_events.alias("earlier")
    pending_before = (
        sa.select(earlier.c.id)
        .where(
            earlier.c.message_id == message_events.c.message_id,
            earlier.c.id < message_events.c.id,
            earlier.c.state == "pending",
        )
        .exists()
    )
    due = (
        sa.select(message_events.c.id)
        .join(accounts, accounts.c.id == message_events.c.account_id)
        .where(
            message_events.c.state == "pending",
            message_events.c.next_attempt_at <= now,
            sa.or_(message_events.c.claimed_until.is_(None), message_events.c.claimed_until < now),
            sa.or_(message_events.c.url.is_not(None), accounts.c.webhook_enabled),
            ~pending_before,
        )
        .order_by(message_events.c.next_attempt_at)
        .limit(limit)
    )
    if skip_accounts:
        due = due.where(
            sa.or_(
                message_events.c.url.is_not(None),
                message_events.c.account_id.not_in(skip_accounts),
            )
        )
    if dialect == "postgresql":
        due = due.with_for_update(of=message_events, skip_locked=True)
    return (
        sa.update(message_events)
        .where(message_events.c.id.in_(due.scalar_subquery()))
        .values(claimed_by=worker, claimed_until=lease_until)
        .returning(*message_events.c)
    )


def insert_missing(
    dialect: str, table: sa.Table, values: dict[str, Any] | None = None
) -> sa.Insert:
    """INSERT … ON CONFLICT DO NOTHING: add the row unless its key exists already
    (without `values`: the rows are the parameters of the execution)."""
    insert: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    )
    if values is not None:
        insert = insert.values(values)
    return insert.on_conflict_do_nothing()


def due_peek(dialect: str) -> str:
    """Is any message claimable at the time given? The claim's own condition, as a
    read: an idle engine asks this before it takes the write lock of a claim."""
    now = _param(dialect)
    return (
        "SELECT 1 FROM messages WHERE due_at IS NOT NULL AND due_at <= "
        f"{now} AND (claimed_until IS NULL OR claimed_until < {now}) LIMIT 1"
    )


def webhooks_peek(dialect: str) -> str:
    """Is any webhook event due at the time given? A superset of what the claim takes
    (it also skips disabled endpoints and events behind an earlier one)."""
    now = _param(dialect)
    return (
        "SELECT 1 FROM message_events WHERE state = 'pending' AND next_attempt_at <= "
        f"{now} AND (claimed_until IS NULL OR claimed_until < {now}) LIMIT 1"
    )


def _param(dialect: str) -> str:
    """The one parameter of a peek, numbered so that it may be used twice."""
    return "$1" if dialect == "postgresql" else "?1"


def add_counts(dialect: str, table: sa.Table, keys: list[str], count: str = "count") -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET count = count + the new row's: the rows
    (the parameters of the execution) add to the counts of their keys."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    added = {count: table.c[count] + insert.excluded[count]}
    return insert.on_conflict_do_update(index_elements=keys, set_=added)


def upsert(dialect: str, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]) -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE: the rows replace those with their keys."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(table).values(rows)
    updated = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
    return insert.on_conflict_do_update(index_elements=keys, set_=updated)
