"""What carriers charged: one row per step of a message (`carrier_costs`), kept beside
the customer's price so that each message's margin is known (docs/carriers.md).

A carrier may tell the same cost twice (a webhook and a poll): the later replaces
the earlier, so it is counted once.
"""

from __future__ import annotations

from collections.abc import Sequence

from batgate.domain.outcomes import CarrierCost
from batgate.domain.pricing import to_micros
from batgate.store import dialects
from batgate.store.database import Database
from batgate.store.schema import carrier_costs


class CarrierCosts:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, connector: str, costs: Sequence[CarrierCost], now: float) -> None:
        rows = {
            (c.message_id, c.index): {
                "message_id": c.message_id,
                "step": c.index,
                "connector": connector,
                "micros": to_micros(c.amount),
                "currency": c.currency,
                "at": now,
            }
            for c in costs
        }
        if not rows:
            return
        keys = ["message_id", "step"]
        async with self.db.writer.begin() as conn:
            await conn.execute(
                dialects.upsert(self.db.dialect, carrier_costs, list(rows.values()), keys)
            )
