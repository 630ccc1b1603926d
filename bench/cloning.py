"""Growing a database of delivered messages to millions of rows, in SQL, fast.

The new rows are copies of the messages batgate itself wrote and delivered
(backends.Delivered), taken in turn, so every column holds what the store
writes (store/rows.py `new_message_row`, then the engine's updates). Changed
in each copy:

- `id`: batgate's format (store/manager.py `new_message_id`): 12 hex digits of
  milliseconds since the epoch, then 10 hex digits that look random (the copy's
  number × 2654435761 mod 2⁴⁰: unique per copy, so no collisions);
- `messagelist_id`: a new message list (a `messagelists` row) per 100 copies;
- `carrier_ref`: the original's, with the original's id replaced by the new one;
- the times (`created_at`, `updated_at`, `deadline`, …): shifted with the copy.

Each copy's history (`message_events`) is a copy of its original's, shifted the
same way. The copies are older than the originals, spread evenly over the 30
days before them, oldest first, and inserted in that order: ids grow as they
would have, so the primary key is appended to, as it is when batgate writes.
Indexes stay in place while the rows go in, as in a database that grew.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from procs import BenchError, log
from scratchdb import Target, connect, dialect

from batgate.store.schema import message_events, messages

SPAN_S = 30 * 86_400
CHUNK = 250_000
LIST_SIZE = 100
_SCRAMBLE = 2_654_435_761  # odd, so g -> g × _SCRAMBLE mod 2**40 is one-to-one
_SPACE = 2**40
MESSAGE_TIMES = ("created_at", "updated_at", "deadline", "due_at", "claimed_until")
EVENT_TIMES = ("at", "next_attempt_at", "claimed_until", "delivered_at")


class _Sql:
    """The few expressions that differ between the dialects, for copy number `g`."""

    def __init__(self, kind: str, start_ms: int, step_ms: int, templates: int) -> None:
        self.kind = kind
        self.start_ms = start_ms
        self.step_ms = step_ms
        self.templates = templates

    def ms(self, g: str = "g") -> str:
        """Copy `g`'s creation time, in milliseconds since the epoch."""
        return f"({self.start_ms} + {g} * {self.step_ms})"

    def series(self, lo: int, hi: int) -> tuple[str, str]:
        """(a WITH prefix, a FROM item) giving g = lo … hi - 1."""
        if self.kind == "postgresql":
            return "", f"generate_series({lo}::bigint, {hi - 1}::bigint) AS s(g)"
        step = f"SELECT g + 1 FROM s WHERE g < {hi - 1}"
        return f"WITH RECURSIVE s(g) AS (SELECT {lo} UNION ALL {step}) ", "s"

    @property
    def new_id(self) -> str:
        if self.kind == "postgresql":
            return (
                f"lpad(to_hex({self.ms()}), 12, '0') || "
                f"lpad(to_hex(mod(g * {_SCRAMBLE}, {_SPACE})), 10, '0')"
            )
        return f"printf('%012x%010x', {self.ms()}, (g * {_SCRAMBLE}) % {_SPACE})"

    def at(self, g: str = "g") -> str:
        """Copy `g`'s creation time, in seconds (a float, as batgate stores it)."""
        return f"CAST({self.ms(g)} AS DOUBLE PRECISION) / 1000"

    def template(self, g: str = "g") -> str:
        if self.kind == "postgresql":
            return f"mod({g}, {self.templates})"
        return f"{g} % {self.templates}"

    def smaller(self, a: str, b: str) -> str:
        return f"least({a}, {b})" if self.kind == "postgresql" else f"min({a}, {b})"


def _messages_insert(q: _Sql, lo: int, hi: int, list_base: int) -> str:
    exprs = []
    for name in (c.name for c in messages.c):
        if name == "id":
            exprs.append(q.new_id)
        elif name == "messagelist_id":
            exprs.append(f"{list_base} + g / {LIST_SIZE}")
        elif name == "carrier_ref":
            exprs.append(f"replace(t.carrier_ref, t.id, {q.new_id})")
        elif name in MESSAGE_TIMES:
            exprs.append(f"t.{name} + ({q.at()} - t.created_at)")
        else:
            exprs.append(f"t.{name}")
    prefix, source = q.series(lo, hi)
    columns = ", ".join(c.name for c in messages.c)
    return (
        f"{prefix}INSERT INTO messages ({columns}) SELECT {', '.join(exprs)} "
        f"FROM {source} JOIN tpl t ON t.n = {q.template()}"
    )


def _events_insert(q: _Sql, lo: int, hi: int, rank: int) -> str:
    """The copies' events that were their originals' `rank`-th (1: the first)."""
    names = [c.name for c in message_events.c if c.name != "id"]
    exprs = []
    for name in names:
        if name == "message_id":
            exprs.append(q.new_id)
        elif name == "payload":
            exprs.append(f"replace(e.payload, e.t_id, {q.new_id})")
        elif name in EVENT_TIMES:
            exprs.append(f"e.{name} + ({q.at()} - e.t_created)")
        else:
            exprs.append(f"e.{name}")
    prefix, source = q.series(lo, hi)
    return (
        f"{prefix}INSERT INTO message_events ({', '.join(names)}) SELECT {', '.join(exprs)} "
        f"FROM {source} JOIN tpl_events e ON e.n = {q.template()} AND e.k = {rank}"
    )


def _lists_insert(q: _Sql, copies: int, list_base: int, account: int) -> str:
    lists = -(-copies // LIST_SIZE)
    prefix, source = q.series(0, lists)
    count = q.smaller(str(LIST_SIZE), f"{copies} - g * {LIST_SIZE}")
    at = q.at(f"g * {LIST_SIZE}")
    return (
        f"{prefix}INSERT INTO messagelists (id, account_id, message_count, created_at) "
        f"SELECT {list_base} + g, {account}, {count}, {at} FROM {source}"
    )


_TEMPLATES = (
    "CREATE TEMP TABLE tpl AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, m.* FROM messages m",
    "CREATE INDEX tpl_n ON tpl (n)",
    # k: the event's place in its message's history, so copies keep their order.
    "CREATE TEMP TABLE tpl_events AS SELECT t.n AS n, t.id AS t_id, t.created_at AS t_created, "
    "row_number() OVER (PARTITION BY e.message_id ORDER BY e.id) AS k, e.* "
    "FROM message_events e JOIN tpl t ON t.id = e.message_id",
    "CREATE INDEX tpl_events_nk ON tpl_events (n, k)",
)


def grow(db: Target, total: int, chunk: int = CHUNK) -> dict[str, Any]:
    """Add copies of the stored (delivered) messages until there are `total`; timings."""
    kind = dialect(db)
    with connect(db) as conn:
        if kind == "sqlite":
            conn.isolation_level = None  # each statement its own transaction
            conn.execute("PRAGMA synchronous=OFF")  # bench set-up only
        templates, first, not_final, list_max, account = conn.execute(
            "SELECT count(*), min(created_at), sum(CASE WHEN due_at IS NULL THEN 0 ELSE 1 END), "
            "(SELECT max(id) FROM messagelists), min(account_id) FROM messages"
        ).fetchone()
        copies = total - templates
        if copies <= 0:
            return {"messages": templates, "copies": 0}
        if not_final:
            raise BenchError(f"cloning: {not_final} of the messages to copy are still due")
        step_ms = max(1, SPAN_S * 1000 // copies)
        q = _Sql(kind, int(first * 1000) - step_ms * copies, step_ms, templates)
        for statement in _TEMPLATES:
            conn.execute(statement)
        ranks = int(conn.execute("SELECT coalesce(max(k), 0) FROM tpl_events").fetchone()[0])
        if kind == "postgresql":
            conn.execute("ANALYZE tpl")
            conn.execute("ANALYZE tpl_events")
        timings = {"messages_s": 0.0, "events_s": 0.0}
        started = time.monotonic()
        for lo in range(0, copies, chunk):
            hi = min(copies, lo + chunk)
            t0 = time.monotonic()
            conn.execute(_messages_insert(q, lo, hi, list_max + 1))
            t1 = time.monotonic()
            for rank in range(1, ranks + 1):
                # As the engine writes them: a batch's first events, later the next ones.
                conn.execute(_events_insert(q, lo, hi, rank))
            timings["messages_s"] += t1 - t0
            timings["events_s"] += time.monotonic() - t1
            if (hi // chunk) % 4 == 0 or hi == copies:
                rate = hi / (time.monotonic() - started)
                log(f"cloning: {templates + hi:,} of {total:,} messages ({rate:,.0f}/s)")
        t0 = time.monotonic()
        conn.execute(_lists_insert(q, copies, list_max + 1, account))
        if kind == "postgresql":
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('messagelists', 'id'), "
                "(SELECT max(id) FROM messagelists))"
            )
        timings["lists_s"] = time.monotonic() - t0
        conn.execute("DROP TABLE tpl_events")
        conn.execute("DROP TABLE tpl")
    seconds = time.monotonic() - started
    return {
        "messages": total,
        "copies": copies,
        "seconds": round(seconds, 1),
        "copies_per_s": round(copies / seconds),
        **{k: round(v, 1) for k, v in timings.items()},
    }


def sample_ids(db: Target, count: int, path: Path) -> int:
    """`count` ids of stored messages, uniformly at random, into `path`; how many."""
    with connect(db, readonly=True) as conn:
        rows = conn.execute(f"SELECT id FROM messages ORDER BY random() LIMIT {count}").fetchall()
    path.write_text("".join(f"{r[0]}\n" for r in rows))
    return len(rows)
