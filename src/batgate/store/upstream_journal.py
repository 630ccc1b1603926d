"""The batches handed to SMSBAT upstreams, written before they are sent
(`upstream_batches`, `upstream_batch_members`; channels.smsbat.connector).

A process that crashed with a batch under way leaves its messages claimed; when their
lease runs out, another process takes them back and finds here the batch each was
in: it sends that batch again, whole, with its Idempotency-Key and body, and an
upstream that honours the key answers what it answered the first time. A message
sent in a later batch (its first was refused outright) is found in the later one.
Rows are kept as long as an upstream keeps keys (a day, as batgate does), then
purged by retention.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import sqlalchemy as sa

from batgate.domain.outcomes import JournaledBatch
from batgate.store import dialects
from batgate.store.database import Database
from batgate.store.schema import upstream_batch_members, upstream_batches

Member = tuple[str, int]  # (message id, step)
_CHUNK = 500


class UpstreamJournal:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def write(
        self, connector: str, key: str, body: bytes, members: Sequence[Member], now: float
    ) -> None:
        """The batch, before it is sent; each member now points at it."""
        batch = {
            "connector": connector,
            "key": key,
            "body": body,
            "members": orjson.dumps(list(members)).decode(),
            "created_at": now,
        }
        rows = [
            {"connector": connector, "message_id": m, "step": s, "key": key, "created_at": now}
            for m, s in members
        ]
        keys = ["connector", "message_id", "step"]
        async with self.db.writer.begin() as conn:
            await conn.execute(upstream_batches.insert().values(batch))
            await conn.execute(dialects.upsert(self.db.dialect, upstream_batch_members, rows, keys))

    async def find(self, connector: str, members: Sequence[Member]) -> dict[Member, JournaledBatch]:
        """The latest batch each of `members` was in, where one was written."""
        wanted = set(members)
        ids = sorted({m for m, _ in wanted})
        found: dict[Member, str] = {}
        async with self.db.reader.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                rows = await conn.execute(
                    sa.select(
                        upstream_batch_members.c.message_id,
                        upstream_batch_members.c.step,
                        upstream_batch_members.c.key,
                    ).where(
                        upstream_batch_members.c.connector == connector,
                        upstream_batch_members.c.message_id.in_(ids[start : start + _CHUNK]),
                    )
                )
                found.update({(m, s): k for m, s, k in rows if (m, s) in wanted})
            keys = sorted(set(found.values()))
            batches: dict[str, JournaledBatch] = {}
            for start in range(0, len(keys), _CHUNK):
                rows = await conn.execute(
                    sa.select(
                        upstream_batches.c.key, upstream_batches.c.body, upstream_batches.c.members
                    ).where(
                        upstream_batches.c.connector == connector,
                        upstream_batches.c.key.in_(keys[start : start + _CHUNK]),
                    )
                )
                for key, body, listed in rows:
                    batch_members = tuple((str(m), int(s)) for m, s in orjson.loads(listed))
                    batches[key] = JournaledBatch(key, bytes(body), batch_members)
        return {m: batches[k] for m, k in found.items() if k in batches}
