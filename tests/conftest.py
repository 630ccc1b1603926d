"""Fixtures of every test directory: the database backends each test runs on."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from databases import BACKENDS, Databases

# The third-party SMSC peers' helpers (tests/peers/peers_support.py) are imported by
# name from the SMPP tests of every directory, not only from tests/peers.
sys.path.insert(0, str(Path(__file__).parent / "peers"))


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    made = Databases()
    try:
        yield made
    finally:
        made.drop_all()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test: each test using it runs once per backend."""
    return str(request.param)


@pytest.fixture
def database_url(databases: Databases, backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of the test's backend (PostgreSQL's are recycled)."""
    with databases.lease(backend, tmp_path) as url:
        yield url
