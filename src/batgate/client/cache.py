"""A cache of message statuses that knows which ones can never change.

A final status (delivered, undeliverable, permanenterror) is final for good
(SPEC §3), so it is kept until the cache is full (least recently used goes
first). A status that is not final is kept only `ttl` seconds: long enough to
spare a burst of identical look-ups, short enough not to hide progress.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from batgate.client.models import MessageStatus

__all__ = ["StatusCache"]


class StatusCache:
    """Thread-safe; one instance may be shared by several clients of the same account."""

    def __init__(
        self,
        ttl: float = 2.0,
        max_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.ttl = ttl
        self.max_size = max_size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[MessageStatus, float | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, message_id: str, *, final_only: bool = False) -> MessageStatus | None:
        """The cached status, if any and still fresh; with `final_only`, only a final one."""
        with self._lock:
            entry = self._entries.get(message_id)
            if entry is None:
                return None
            status, expires = entry
            if expires is not None:
                if self._clock() >= expires:
                    del self._entries[message_id]
                    return None
                if final_only:
                    return None
            self._entries.move_to_end(message_id)
            return status

    def put(self, status: MessageStatus) -> None:
        expires = None if status.is_final else self._clock() + self.ttl
        with self._lock:
            if expires is not None and self.ttl <= 0:
                self._entries.pop(status.message_id, None)
                return
            old = self._entries.get(status.message_id)
            if old is not None and old[1] is None and expires is not None:
                return  # a late, older answer never replaces a final status
            self._entries[status.message_id] = (status, expires)
            self._entries.move_to_end(status.message_id)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
