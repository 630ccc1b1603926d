"""Fixtures of the integration tests: a real SQLite store in a temporary directory."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from integration_support import db_url, make_account

from batgate.domain.records import Account
from batgate.store.manager import Store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    s = Store.connect(db_url(db_path))
    await s.upgrade()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def raw(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the same file, for looking behind the store."""
    with closing(sqlite3.connect(db_path)) as conn:
        yield conn


@pytest.fixture
async def account(store: Store) -> Account:
    return await make_account(store)
