"""heap.settle: garbage is collected, then what lives is frozen out of the collector's sight."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from batgate import heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only a collection frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Nothing frozen before, and no automatic collection during, the test."""
    gc.unfreeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def test_settle_collects_the_garbage_then_freezes_what_lives(unfrozen: None) -> None:
    kept = [[n] for n in range(1000)]
    garbage = weakref.ref(Node())
    assert garbage() is not None
    heap.settle()
    assert garbage() is None
    assert gc.get_freeze_count() >= len(kept)
