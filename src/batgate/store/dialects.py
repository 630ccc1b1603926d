"""SQL that differs by dialect: claiming due work in one statement."""

from __future__ import annotations

import sqlalchemy as sa

from batgate.store.schema import messages


def claim_due(dialect: str, worker: str, now: float, lease_until: float, limit: int) -> sa.Update:
    """Lease up to `limit` due messages to `worker` and return them, in one statement.

    PostgreSQL skips rows another worker has locked; SQLite has one writer at a
    time, so the plain subquery is already exclusive.
    """
    due = (
        sa.select(messages.c.id)
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
    return (
        sa.update(messages)
        .where(messages.c.id.in_(due.scalar_subquery()))
        .values(claimed_by=worker, claimed_until=lease_until)
        .returning(*messages.c)
    )
