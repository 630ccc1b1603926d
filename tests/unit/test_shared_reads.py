"""store.shared_reads: point reads asked for in one turn of the event loop share a query."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from batgate.store.shared_reads import SharedReads

TABLE = {"a": ("a", 1, "doc a"), "b": ("b", 2, "doc b"), "c": ("c", 1, "doc c")}


class Table:
    """The rows by key; records each query's keys."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.queries: list[list[Any]] = []
        self.fail = fail

    async def fetch_many(self, keys: list[Any]) -> Sequence[tuple[Any, ...]]:
        self.queries.append(keys)
        await asyncio.sleep(0)  # a round trip
        if self.fail is not None:
            raise self.fail
        return [TABLE[k] for k in keys if k in TABLE]


# (id, the keys read in one turn, the query's keys, the answers)
TOGETHER = [
    ("one read, one query", ["a"], [["a"]], [(1, "doc a")]),
    (
        "several share one",
        ["a", "b", "c"],
        [["a", "b", "c"]],
        [(1, "doc a"), (2, "doc b"), (1, "doc c")],
    ),
    ("a key twice, asked once", ["a", "a"], [["a"]], [(1, "doc a"), (1, "doc a")]),
    ("an unknown key is None", ["a", "zz"], [["a", "zz"]], [(1, "doc a"), None]),
]


@pytest.mark.parametrize(
    ("keys", "queries", "answers"), [c[1:] for c in TOGETHER], ids=[c[0] for c in TOGETHER]
)
async def test_reads_of_one_turn_share_a_query(
    keys: list[str], queries: list[list[str]], answers: list[Any]
) -> None:
    table = Table()
    reads = SharedReads(table.fetch_many)
    assert await asyncio.gather(*(reads.read(k) for k in keys)) == answers
    assert table.queries == queries


async def test_reads_of_later_turns_get_queries_of_their_own() -> None:
    table = Table()
    reads = SharedReads(table.fetch_many)
    first = asyncio.ensure_future(reads.read("a"))
    await asyncio.sleep(0)  # the first query is under way
    second = asyncio.ensure_future(reads.read("b"))
    assert (await first, await second) == ((1, "doc a"), (2, "doc b"))
    assert table.queries == [["a"], ["b"]]


async def test_a_failed_query_fails_every_read_of_it() -> None:
    reads = SharedReads(Table(fail=ConnectionError("gone")).fetch_many)
    answers = await asyncio.gather(reads.read("a"), reads.read("b"), return_exceptions=True)
    assert [type(a) for a in answers] == [ConnectionError, ConnectionError]


async def test_a_cancelled_read_leaves_the_others_their_answers() -> None:
    table = Table()
    reads = SharedReads(table.fetch_many)
    gone = asyncio.ensure_future(reads.read("a"))
    kept = asyncio.ensure_future(reads.read("b"))
    await asyncio.sleep(0)
    gone.cancel()
    assert await kept == (2, "doc b")
    assert gone.cancelled()


async def test_a_key_the_database_refuses_fails_alone() -> None:
    """A batch whose query fails is read again key by key: only the bad key's reader
    gets the error (on PostgreSQL a NUL in an id fails the whole statement)."""

    class Picky(Table):
        async def fetch_many(self, keys: list[Any]) -> Sequence[tuple[Any, ...]]:
            self.queries.append(keys)
            if "bad\0" in keys:
                raise ValueError("invalid byte sequence")
            return [TABLE[k] for k in keys if k in TABLE]

    table = Picky()
    reads = SharedReads(table.fetch_many)
    answers = await asyncio.gather(
        reads.read("a"), reads.read("bad\0"), reads.read("b"), return_exceptions=True
    )
    assert answers[0] == (1, "doc a") and answers[2] == (2, "doc b")
    assert isinstance(answers[1], ValueError)
    assert table.queries[0] == ["a", "bad\0", "b"] and len(table.queries) == 4


async def test_at_most_in_flight_queries_run_at_once_and_the_rest_share_the_next() -> None:
    """A slow database: two queries under way, the reads that come meanwhile (over
    several turns) wait and share one query when the first finishes."""
    release = asyncio.Event()
    running: list[int] = []

    class Slow(Table):
        async def fetch_many(self, keys: list[Any]) -> Sequence[tuple[Any, ...]]:
            self.queries.append(keys)
            running.append(len(self.queries) - len(done))
            await release.wait()
            done.append(keys)
            return [TABLE[k] for k in keys if k in TABLE]

    done: list[list[Any]] = []
    table = Slow()
    reads = SharedReads(table.fetch_many, in_flight=2)
    first = [asyncio.ensure_future(reads.read("a"))]
    await asyncio.sleep(0.01)
    first.append(asyncio.ensure_future(reads.read("b")))
    await asyncio.sleep(0.01)
    later = [asyncio.ensure_future(reads.read(k)) for k in ("c", "a")]
    await asyncio.sleep(0.01)
    later.append(asyncio.ensure_future(reads.read("zz")))
    await asyncio.sleep(0.01)
    assert table.queries == [["a"], ["b"]]  # two under way; three reads wait
    release.set()
    assert await asyncio.gather(*first, *later) == [
        (1, "doc a"),
        (2, "doc b"),
        (1, "doc c"),
        (1, "doc a"),
        None,
    ]
    assert table.queries[2:] == [["c", "a", "zz"]]
    assert max(running) <= 2
