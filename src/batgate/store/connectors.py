"""Connectors in the database: the operator's drain switch and each engine's view.

`batgate connectors drain NAME` / `enable NAME` write a switch; every engine reads the
switches every few seconds and writes what it sees of each connector (one row per
connector and process), which `batgate connectors` reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from batgate.domain.records import ConnectorReport
from batgate.store import dialects
from batgate.store.database import Database
from batgate.store.schema import connector_reports, connector_switches


class ConnectorBoard:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def drained(self) -> set[str]:
        """The connectors the operator drained."""
        async with self.db.reader.connect() as conn:
            rows = await conn.execute(
                sa.select(connector_switches.c.name).where(connector_switches.c.drained)
            )
            return {name for (name,) in rows}

    async def switch(self, name: str, drained: bool, now: float) -> None:
        row = {"name": name, "drained": drained, "changed_at": now}
        async with self.db.writer.begin() as conn:
            await conn.execute(
                dialects.upsert(self.db.dialect, connector_switches, [row], ["name"])
            )

    async def report(self, worker: str, reports: Sequence[ConnectorReport], now: float) -> None:
        """This process's view of its connectors, replacing its earlier one."""
        if not reports:
            return
        rows = [
            {
                "connector": r.connector,
                "worker": worker,
                "state": r.state,
                "links": r.links,
                "in_flight": r.in_flight,
                "sent_minute": r.sent_minute,
                "errors_minute": r.errors_minute,
                "last_error": r.last_error,
                "last_error_at": r.last_error_at,
                "reported_at": now,
            }
            for r in reports
        ]
        keys = ["connector", "worker"]
        async with self.db.writer.begin() as conn:
            await conn.execute(dialects.upsert(self.db.dialect, connector_reports, rows, keys))

    async def forget(self, worker: str) -> None:
        """A process that stops takes its view with it."""
        async with self.db.writer.begin() as conn:
            await conn.execute(
                sa.delete(connector_reports).where(connector_reports.c.worker == worker)
            )

    async def reports(self, since: float) -> list[ConnectorReport]:
        """Every process's view written since `since`, by connector then process."""
        c = connector_reports.c
        async with self.db.reader.connect() as conn:
            rows = await conn.execute(
                sa.select(
                    c.connector,
                    c.state,
                    c.links,
                    c.in_flight,
                    c.sent_minute,
                    c.errors_minute,
                    c.last_error,
                    c.last_error_at,
                    c.worker,
                    c.reported_at,
                )
                .where(c.reported_at >= since)
                .order_by(c.connector, c.worker)
            )
            return [ConnectorReport(**row._mapping) for row in rows]

    async def switches(self) -> dict[str, tuple[bool, float]]:
        """Every switch the operator set: name → (drained, when)."""
        async with self.db.reader.connect() as conn:
            rows = await conn.execute(sa.select(connector_switches))
            return {name: (bool(drained), at) for name, drained, at in rows}
