"""Fixtures of the integration tests: a real store on each backend (tests/databases.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from integration_support import make_account

from batgate.domain.records import Account
from batgate.store.manager import Store
from databases import Raw, raw_connection


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = Store.connect(database_url)
    await s.upgrade()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def raw(database_url: str) -> Iterator[Raw]:
    """Plain SQL on the same database, for looking behind the store."""
    with raw_connection(database_url) as conn:
        yield conn


@pytest.fixture
async def account(store: Store) -> Account:
    return await make_account(store)
