"""Fixtures of every test directory: the database backends each test runs on."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`--dist loadgroup`, scripts/run-tests), the tests of a module
    that share module-scoped fixtures (its servers, an SMSC, Kannel) stay on one worker
    per backend, so those start once; the other tests spread over every worker, so a
    module of long tests does not keep one worker busy while the others idle. First
    of the hooks: xdist reads the marks in its own, which would otherwise run before."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        if not any(d[-1].scope == "module" for d in defs):
            continue
        params = getattr(item, "callspec", None)
        backend = params.params.get("backend") if params is not None else None
        # No "]" at the end: xdist takes what follows "@" as the group only when it
        # comes after the last "]" of the node id.
        group = item.nodeid.split("::", 1)[0] + (f":{backend}" if backend else "")
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _tasks_shown_before_the_timeout(request: pytest.FixtureRequest) -> Iterator[None]:
    """An async test still running 15 s before pytest-timeout stops it prints where each
    task of its event loop waits: pytest-timeout shows threads, and an event loop's
    thread only ever shows it waiting in select()."""
    marker = request.node.get_closest_marker("timeout")
    limit = float(marker.args[0] if marker else request.config.getini("timeout") or 0)
    if not inspect.iscoroutinefunction(request.function) or limit <= 30:
        yield
        return
    after = limit - 15

    def show(_signum: int, _frame: FrameType | None) -> None:
        try:
            tasks = asyncio.all_tasks()
        except RuntimeError:  # no loop running at this moment
            return
        print(
            f"\n{request.node.nodeid}: still running after {after:g} s; its tasks:", file=sys.stderr
        )
        for task in tasks:
            task.print_stack(limit=10, file=sys.stderr)

    previous = signal.signal(signal.SIGUSR1, show)
    timer = threading.Timer(after, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
