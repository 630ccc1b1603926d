"""Fixtures of the SDK and CLI tests.

One table of cases runs against both clients (`flavour`: sync, async) and both
targets (`target`): the real app in-process through `httpx.ASGITransport`, and a
live `batgate serve` over HTTP (e2e). Each target is started once per session
with a fresh SQLite file, fast sandbox timings, no rate limit, and two accounts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from client_support import (
    FAST_POLL,
    PASSWORD,
    Blocking,
    BlockingASGITransport,
    LiveServer,
    LoopThread,
    MakeClient,
    ScriptedServer,
    Target,
    live_server,
)

from batgate.api.app import create_app
from batgate.client import AsyncClient, Client
from batgate.config import load_settings
from batgate.domain.credentials import hash_password, key_hash, new_webhook_secret
from batgate.store.manager import Store
from databases import Databases


class InProcessApp:
    """The real app (API and engine) under its lifespan, in one task of a LoopThread."""

    def __init__(self, app: Any, loop: LoopThread) -> None:
        self._loop = loop
        self._stop: asyncio.Event | None = None
        ready: concurrent.futures.Future[Any] = concurrent.futures.Future()

        async def main() -> None:
            self._stop = asyncio.Event()
            async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
                ready.set_result(manager.app)
                await self._stop.wait()

        self._task = asyncio.run_coroutine_threadsafe(main(), loop.loop)
        concurrent.futures.wait([ready, self._task], 30, concurrent.futures.FIRST_COMPLETED)
        if self._task.done():
            self._task.result()
        self.app = ready.result(0)

    def close(self) -> None:
        if self._stop is not None:
            self._loop.loop.call_soon_threadsafe(self._stop.set)
        self._task.result(30)


async def _make_accounts(database_url: str) -> tuple[str, str]:
    alice_key, bob_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    store = Store.connect(database_url)
    try:
        await store.upgrade()
        await store.create_account(
            "alice", key_hash(alice_key), hash_password(PASSWORD), None, new_webhook_secret(), "USD"
        )
        await store.create_account(
            "bob", key_hash(bob_key), None, None, new_webhook_secret(), "USD"
        )
    finally:
        await store.close()
    return alice_key, bob_key


@pytest.fixture(scope="session")
def inproc_target(
    tmp_path_factory: pytest.TempPathFactory, backend: str, databases: Databases
) -> Iterator[Target]:
    database_url = databases.url(backend, tmp_path_factory.mktemp(f"inproc-{backend}"))
    settings = load_settings(
        database_url=database_url,
        sandbox={"delivery_delay": 0.1, "slow_delay": 60, "jitter": 0.2},
        dispatcher={"poll_interval": 0.05, "retry_delays": [0.05, 0.05]},
        rate_limit={"enabled": False},
    )
    loop = LoopThread()
    alice_key, bob_key = loop.run(_make_accounts(database_url))
    served = InProcessApp(create_app(settings, workers=True), loop)
    try:
        yield Target(
            name="inproc",
            url="http://batgate.test",
            loop=loop,
            sync_transport=lambda: BlockingASGITransport(served.app, loop),
            async_transport=lambda: httpx.ASGITransport(app=served.app),
            alice="alice",
            alice_key=alice_key,
            bob_key=bob_key,
            database_url=database_url,
        )
    finally:
        served.close()
        loop.close()


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, databases: Databases
) -> Iterator[LiveServer]:
    """A live `batgate serve` shared by the e2e tests of the session."""
    workdir = tmp_path_factory.mktemp(f"live-{backend}")
    with live_server(workdir, databases.url(backend, workdir)) as live:
        yield live


@pytest.fixture(scope="session")
def api_key(server: LiveServer) -> str:
    """An account on the live server, for the CLI tests."""
    return server.create_account("cli")[1]


@pytest.fixture(scope="session")
def http_target(server: LiveServer) -> Iterator[Target]:
    alice, alice_key = server.create_account("alice", password=PASSWORD)
    _, bob_key = server.create_account("bob")
    loop = LoopThread()
    try:
        yield Target(
            "http",
            server.url,
            loop,
            lambda: None,
            lambda: None,
            alice,
            alice_key,
            bob_key,
            server.env["BATGATE_DATABASE_URL"],
        )
    finally:
        loop.close()


@pytest.fixture(params=["inproc", pytest.param("http", marks=pytest.mark.e2e)])
def target(request: pytest.FixtureRequest, backend: str) -> Target:
    # `backend` is named so that pytest parametrises the target's server by backend.
    return request.getfixturevalue(f"{request.param}_target")  # type: ignore[no-any-return]


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(flavour: str, target: Target) -> Iterator[MakeClient]:
    """`make_client(**options)`: a Client, or an AsyncClient behind blocking methods.

    Defaults: alice's API key, sender "Shop", fast polling. Closed after the test.
    """
    made: list[Any] = []

    def make(**options: Any) -> Any:
        if not {"api_key", "username"} & options.keys():
            options["api_key"] = target.alice_key
        options.setdefault("sender", "Shop")
        options.setdefault("poll", FAST_POLL)
        if flavour == "sync":
            client: Any = Client(target.url, transport=target.sync_transport(), **options)
        else:
            inner = AsyncClient(target.url, transport=target.async_transport(), **options)
            client = Blocking(inner, target.loop)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> Any:
    return make_client()


# -- the scripted server -------------------------------------------------------------------


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def script_loop() -> Iterator[LoopThread]:
    loop = LoopThread()
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture
def scripted(scripted_server: ScriptedServer) -> ScriptedServer:
    scripted_server.reset()
    return scripted_server


@pytest.fixture
def make_scripted_client(
    flavour: str, scripted: ScriptedServer, script_loop: LoopThread
) -> Iterator[MakeClient]:
    """`make_scripted_client(url=None, **options)`: a client of the scripted server (key "k")."""
    made: list[Any] = []

    def make(url: str | None = None, **options: Any) -> Any:
        if not {"api_key", "username"} & options.keys():
            options["api_key"] = "k"
        options.setdefault("poll", FAST_POLL)
        if flavour == "sync":
            client: Any = Client(url or scripted.url, **options)
        else:
            client = Blocking(AsyncClient(url or scripted.url, **options), script_loop)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    return tmp_path
