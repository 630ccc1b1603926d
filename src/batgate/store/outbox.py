"""The webhook outbox: claiming due events, recording attempts, operators' views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from batgate.domain.notifications import DeliveryAttempt, EndpointView, EventView, WebhookEvent
from batgate.store import dialects
from batgate.store.database import Database
from batgate.store.schema import accounts, message_events, webhook_attempts

_RECORD = (
    message_events.update()
    .where(message_events.c.id == sa.bindparam("event_id"))
    .values(
        state=sa.bindparam("new_state"),
        attempts=sa.bindparam("new_attempts"),
        next_attempt_at=sa.bindparam("new_next_attempt_at"),
        last_status=sa.bindparam("new_last_status"),
        last_error=sa.bindparam("new_last_error"),
        delivered_at=sa.bindparam("new_delivered_at"),
        claimed_by=None,
        claimed_until=None,
    )
)


class Outbox:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._due_peek = db.peek(dialects.webhooks_peek(db.dialect))

    async def anything_due(self, now: float) -> bool:
        """Whether an event could be due at `now` (a read, no lock; see Store.anything_due)."""
        return await self._due_peek(now)

    async def claim(
        self,
        worker: str,
        now: float,
        lease: float,
        limit: int,
        skip_accounts: Sequence[int] = (),
    ) -> list[WebhookEvent]:
        """Lease due events; those of `skip_accounts` going to the account URL wait."""
        stmt = dialects.claim_webhooks(
            self.db.dialect, worker, now, now + lease, limit, skip_accounts
        )
        async with self.db.writer.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return sorted((_event(row) for row in rows), key=lambda e: e.id)

    async def record(self, attempts: Sequence[DeliveryAttempt]) -> None:
        """Store attempts and the events' new states, all in one transaction."""
        if not attempts:
            return
        async with self.db.writer.begin() as conn:
            await conn.execute(
                webhook_attempts.insert(),
                [
                    {
                        "event_id": a.event_id,
                        "at": a.at,
                        "duration_ms": a.duration_ms,
                        "status_code": a.status_code,
                        "error": a.error,
                    }
                    for a in attempts
                ],
            )
            # One statement for all, in id order: two workers recording the same
            # events (a lease ran out meanwhile) lock them in the same order.
            await conn.execute(
                _RECORD,
                [
                    {
                        "event_id": a.event_id,
                        "new_state": a.state,
                        "new_attempts": a.attempts,
                        "new_next_attempt_at": a.next_attempt_at,
                        "new_last_status": a.status_code,
                        "new_last_error": a.error,
                        "new_delivered_at": a.at if a.state == "delivered" else None,
                    }
                    for a in sorted(attempts, key=lambda a: a.event_id)
                ],
            )

    async def defer(self, event_ids: Sequence[int], until: float) -> None:
        """Give claimed events back untried, due again at `until`."""
        if not event_ids:
            return
        async with self.db.writer.begin() as conn:
            await conn.execute(
                message_events.update()
                .where(message_events.c.id.in_(event_ids))
                .values(next_attempt_at=until, claimed_by=None, claimed_until=None)
            )

    async def disable_endpoint(self, account_id: int, reason: str) -> None:
        async with self.db.writer.begin() as conn:
            await conn.execute(
                accounts.update()
                .where(accounts.c.id == account_id)
                .values(webhook_enabled=False, webhook_disabled_reason=reason)
            )

    async def retry(self, event_id: int | None, now: float) -> int:
        """Make a failed event (or, with None, every failed event) pending again."""
        where = [message_events.c.state == "failed"]
        if event_id is not None:
            where.append(message_events.c.id == event_id)
        async with self.db.writer.begin() as conn:
            result = await conn.execute(
                message_events.update()
                .where(*where)
                .values(state="pending", attempts=0, next_attempt_at=now)
            )
        return int(result.rowcount)

    async def retry_now(self, event_id: int, now: float) -> int:
        """Send a failing event (pending, waiting for its next attempt) now."""
        async with self.db.writer.begin() as conn:
            result = await conn.execute(
                message_events.update()
                .where(message_events.c.id == event_id, message_events.c.state == "pending")
                .values(next_attempt_at=now)
            )
        return int(result.rowcount)

    async def endpoints(self) -> list[EndpointView]:
        """Every account's webhook endpoint with the events it has not taken: failing
        (pending after a failed attempt) and given up (failed), and the last answer."""
        e = message_events.c
        failing = sa.func.sum(sa.case(((e.state == "pending") & (e.attempts > 0), 1), else_=0))
        failed = sa.func.sum(sa.case((e.state == "failed", 1), else_=0))
        pending = sa.func.sum(sa.case((e.state == "pending", 1), else_=0))
        waiting = (
            sa.select(
                e.account_id,
                pending.label("pending"),
                failing.label("failing"),
                failed.label("failed"),
            )
            .where(e.state.in_(("pending", "failed")), e.url.is_(None))
            .group_by(e.account_id)
            .subquery()
        )
        query = (
            sa.select(
                accounts.c.username,
                accounts.c.webhook_url,
                accounts.c.webhook_enabled,
                accounts.c.webhook_disabled_reason,
                sa.func.coalesce(waiting.c.pending, 0),
                sa.func.coalesce(waiting.c.failing, 0),
                sa.func.coalesce(waiting.c.failed, 0),
            )
            .outerjoin(waiting, waiting.c.account_id == accounts.c.id)
            .where(accounts.c.webhook_url.is_not(None))
            .order_by(sa.desc(sa.func.coalesce(waiting.c.failing, 0)), accounts.c.username)
        )
        async with self.db.reader.connect() as conn:
            rows = await conn.execute(query)
            return [
                EndpointView(user, url, bool(on), reason, int(p), int(f), int(g))
                for user, url, on, reason, p, f, g in rows
            ]

    async def events(
        self,
        username: str | None = None,
        failed: bool = False,
        limit: int = 100,
        failing: bool = False,
    ) -> list[EventView]:
        """Events newest first: all, those that gave up (`failed`), or those that gave up
        or are pending after a failed attempt (`failing`)."""
        query = (
            sa.select(message_events, accounts.c.username)
            .join(accounts, accounts.c.id == message_events.c.account_id)
            .where(message_events.c.state != "none")
            .order_by(message_events.c.id.desc())
            .limit(limit)
        )
        if username is not None:
            query = query.where(accounts.c.username == username)
        if failed:
            query = query.where(message_events.c.state == "failed")
        if failing:
            query = query.where(
                (message_events.c.state == "failed")
                | ((message_events.c.state == "pending") & (message_events.c.attempts > 0))
            )
        async with self.db.reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_view(row) for row in rows]


def _event(row: sa.Row[Any]) -> WebhookEvent:
    return WebhookEvent(
        id=row.id,
        message_id=row.message_id,
        account_id=row.account_id,
        status=row.status,
        payload=row.payload.encode(),
        url=row.url,
        attempts=row.attempts,
        at=row.at,
        ref=row.webhook_id,
    )


def _view(row: sa.Row[Any]) -> EventView:
    event = _event(row)
    return EventView(
        id=row.id,
        webhook_id=event.webhook_id,
        message_id=row.message_id,
        username=row.username,
        status=row.status,
        state=row.state,
        attempts=row.attempts,
        at=row.at,
        next_attempt_at=row.next_attempt_at,
        last_status=row.last_status,
        last_error=row.last_error,
        url=row.url,
    )
