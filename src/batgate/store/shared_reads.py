"""Point reads that arrive together share one query.

Under load a server holds many status lookups at once, each wanting one row by its
primary key. On PostgreSQL each would be a round trip and a statement of its own;
here the keys asked for in one turn of the event loop are read with one statement
(`WHERE id = ANY($1)`), and each caller gets its row. A read waits for nothing but
that turn: alone, it is one query as before; with 64 clients, a query serves
tens of them. At most `in_flight` queries run at once (each holds a connection):
keys asked for while they run share the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Row = tuple[Any, ...]
# Reads the rows of the given keys; each row begins with its key.
FetchMany = Callable[[list[Any]], Awaitable[Sequence[Row]]]


class SharedReads:
    def __init__(self, fetch_many: FetchMany, in_flight: int = 2) -> None:
        """`in_flight`: queries running at once at most; keys asked for meanwhile wait
        for one to finish and share the next (a slow database gets fewer, bigger
        queries, not more connections)."""
        self._fetch_many = fetch_many
        self._in_flight = in_flight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[Any, list[asyncio.Future[Row | None]]] = {}
        self._running = 0  # queries under way
        self._scheduled = False  # a flush is due at the end of this turn
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, key: Any) -> Row | None:
        """The row of `key` without its key, or None when there is none."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # (What was under way on a loop that stopped never will be answered.)
            self._loop, self._waiting, self._running, self._scheduled = loop, {}, 0, False
        future: asyncio.Future[Row | None] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if not self._scheduled and self._running < self._in_flight and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if not self._waiting:
            return
        waiting, self._waiting = self._waiting, {}
        self._running += 1
        task = asyncio.ensure_future(self._answer(waiting))
        self._tasks.add(task)  # kept until done: the loop holds tasks only weakly
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._running -= 1
        if self._waiting and self._loop is not None and not self._loop.is_closed():
            self._schedule()

    async def _answer(self, waiting: dict[Any, list[asyncio.Future[Row | None]]]) -> None:
        try:
            rows = await self._fetch_many(list(waiting))
        except Exception as exc:
            if len(waiting) > 1:  # one bad key must not fail the others: each alone
                await asyncio.gather(*(self._answer({k: f}) for k, f in waiting.items()))
                return
            for future in _pending(waiting):
                future.set_exception(exc)
            return
        except BaseException:  # cancelled (the process stops): so are its readers
            for future in _pending(waiting):
                future.cancel()
            raise
        found = {row[0]: row[1:] for row in rows}
        for key, futures in waiting.items():
            row = found.get(key)
            for future in futures:
                if not future.done():  # a caller cancelled meanwhile
                    future.set_result(row)


def _pending(
    waiting: dict[Any, list[asyncio.Future[Row | None]]],
) -> list[asyncio.Future[Row | None]]:
    """The futures whose callers still wait (not cancelled meanwhile)."""
    return [f for futures in waiting.values() for f in futures if not f.done()]
