"""Taking a scheduled message out of the engine's hands before it is cancelled (SPEC §12).

A cancel must never race a hand-over: the dispatcher may claim the message at the
same moment. So the cancel first claims it the way the dispatcher does (one UPDATE
that succeeds only while the message is `scheduled` and nobody holds a live claim);
while that claim holds, no dispatcher takes it, and the cancel's own write (the
usual compare-and-set, engine.cancels) ends it. Had a dispatcher claimed it first,
the cancel is refused: it may be on its way to a carrier.
"""

from __future__ import annotations

from enum import Enum

import sqlalchemy as sa

from batgate.domain.records import MessageRecord
from batgate.domain.status import DeliveryStatus
from batgate.store.database import Database
from batgate.store.rows import message_from_row
from batgate.store.schema import messages


class Refusal(Enum):
    NOT_FOUND = "not found"  # no such message of this account
    PAST_SCHEDULED = "past scheduled"  # handed to a carrier already, or final
    IN_HAND = "in hand"  # still scheduled, but a dispatcher holds it right now


class Cancellation:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, account_id: int, message_id: str, worker: str, now: float, lease: float
    ) -> MessageRecord | Refusal:
        """Claim the account's scheduled message for `lease` seconds, or say why not."""
        mine = (messages.c.id == message_id) & (messages.c.account_id == account_id)
        claim = (
            sa.update(messages)
            .where(
                mine,
                messages.c.status == DeliveryStatus.SCHEDULED.value,
                sa.or_(messages.c.claimed_until.is_(None), messages.c.claimed_until < now),
            )
            .values(claimed_by=worker, claimed_until=now + lease)
            .returning(*messages.c)
        )
        async with self._db.writer.begin() as conn:
            row = (await conn.execute(claim)).one_or_none()
            if row is not None:
                return message_from_row(row)
            status = (await conn.execute(sa.select(messages.c.status).where(mine))).scalar()
        if status is None:
            return Refusal.NOT_FOUND
        if status == DeliveryStatus.SCHEDULED.value:
            return Refusal.IN_HAND
        return Refusal.PAST_SCHEDULED
