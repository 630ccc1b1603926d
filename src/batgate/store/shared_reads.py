"""Point reads that arrive together share one query.

Under load a server holds many status lookups at once, each wanting one row by its
primary key. On PostgreSQL each would be a round trip and a statement of its own;
here the keys asked for in one turn of the event loop are read with one statement
(`WHERE id = ANY($1)`), and each caller gets its row. A read waits for nothing but
that turn: alone, it is one query as before; with 64 clients, a query serves
tens of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Row = tuple[Any, ...]
# Reads the rows of the given keys; each row begins with its key.
FetchMany = Callable[[list[Any]], Awaitable[Sequence[Row]]]


class SharedReads:
    def __init__(self, fetch_many: FetchMany) -> None:
        self._fetch_many = fetch_many
        self._waiting: dict[Any, list[asyncio.Future[Row | None]]] = {}
        self._flush_on: asyncio.AbstractEventLoop | None = None  # a flush is scheduled
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, key: Any) -> Row | None:
        """The row of `key` without its key, or None when there is none."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Row | None] = loop.create_future()
        if self._flush_on is not loop:
            # (A flush scheduled on a loop that stopped before it ran never will.)
            self._waiting, self._flush_on = {}, loop
            loop.call_soon(self._flush)
        self._waiting.setdefault(key, []).append(future)
        return await future

    def _flush(self) -> None:
        waiting, self._waiting, self._flush_on = self._waiting, {}, None
        task = asyncio.ensure_future(self._answer(waiting))
        self._tasks.add(task)  # kept until done: the loop holds tasks only weakly
        task.add_done_callback(self._tasks.discard)

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
