"""The real app in-process (httpx ASGITransport + lifespan) on a SQLite file.

Accounts are made through the real store; messages become final through the real
dispatcher and sandbox carrier. Error shapes follow SPEC §6.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Body, FastAPI
from integration_support import Clock
from pydantic import BaseModel

from batgate.api.app import create_app
from batgate.api.errors import install_handlers
from batgate.channels.simulator import Simulator
from batgate.config import DispatcherSettings, RateLimitSettings, SandboxSettings, Settings
from batgate.domain.credentials import hash_password, key_hash, new_webhook_secret
from batgate.domain.messages import Channel
from batgate.engine.dispatcher import Dispatcher
from batgate.engine.ratebook import RateBook
from batgate.store.manager import Store
from databases import raw_connection

KEY_A, KEY_B, KEY_C = "alice-api-key-0123456789", "bob-api-key-0123456789", "carol-api-key-01"
PASSWORD = "correct horse"
PASSWORD_HASH = hash_password(PASSWORD)
MOUNT = "/mount"
WWW_AUTHENTICATE = 'Basic realm="batgate"'
SMS = {"from": "Shop", "to": "+380501234567", "type": "sms", "text": "hello"}


def key(api_key: str) -> dict[str, str]:
    return {"X-Authorization-Key": api_key}


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ALICE = key(KEY_A)
BOB = key(KEY_B)


@dataclass
class Api:
    client: httpx.AsyncClient  # the app as deployed
    mounted: httpx.AsyncClient  # the same app under a root path: the fast path steps aside
    database_url: str

    async def send(self, *messages: dict[str, Any], headers: dict[str, str] = ALICE) -> list[str]:
        response = await self.client.post(
            "/bat/messagelist", json={"messages": list(messages)}, headers=headers
        )
        assert response.status_code == 200, response.text
        return [m["messageId"] for m in response.json()["messages"]]


async def create_accounts(database_url: str) -> None:
    store = Store.connect(database_url)
    try:
        await store.upgrade()
        for username, api_key, password_hash, currency in [
            ("alice", KEY_A, PASSWORD_HASH, "USD"),
            ("bob", KEY_B, None, "EUR"),
            ("carol", KEY_C, PASSWORD_HASH, "USD"),
        ]:
            await store.create_account(
                username, key_hash(api_key), password_hash, None, new_webhook_secret(), currency
            )
        await store.update_account("carol", disabled=True)
    finally:
        await store.close()


@asynccontextmanager
async def running(database_url: str, **overrides: Any) -> AsyncIterator[Api]:
    values: dict[str, Any] = {
        "database_url": database_url,
        "rate_limit": RateLimitSettings(enabled=False),
    }
    values.update(overrides)
    app = create_app(Settings.model_construct(**values), workers=False)
    async with AsyncExitStack() as stack:
        manager = await stack.enter_async_context(LifespanManager(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url="http://t")
        )
        mounted = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(manager.app, root_path=MOUNT),
                base_url=f"http://t{MOUNT}",
            )
        )
        yield Api(client, mounted, database_url)


@pytest.fixture
async def accounts(database_url: str) -> str:
    await create_accounts(database_url)
    return database_url


@pytest.fixture
async def api(accounts: str) -> AsyncIterator[Api]:
    async with running(accounts) as a:
        yield a


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.text
    return body["error"]


async def finish_all(database_url: str) -> None:
    """Run the real dispatcher and sandbox on the database until every message is final."""
    store = Store.connect(database_url)
    clock = Clock(time.time() + 1)
    sandbox = Simulator(SandboxSettings(), clock=clock, rng=random.Random(0))
    dispatcher = Dispatcher(
        store,
        dict.fromkeys(Channel, sandbox),
        RateBook(store, []),
        DispatcherSettings(),
        {"USD": 1.0, "EUR": 0.92},
        clock=clock,
    )
    try:
        for _ in range(200):
            await dispatcher.tick()
            with raw_connection(database_url) as conn:
                (open_,) = conn.execute(
                    "SELECT count(*) FROM messages WHERE due_at IS NOT NULL"
                ).fetchone()
            if open_ == 0:
                return
            clock.advance(0.5)
        pytest.fail("messages did not become final")
    finally:
        await store.close()


# -- basics ----------------------------------------------------------------------------


async def test_healthz(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(
    "headers",
    [key(KEY_A), basic("alice", PASSWORD), basic("@", KEY_A)],
    ids=["api-key", "basic-login", "basic-key"],
)
async def test_send_and_look_up_with_every_auth_method(api: Api, headers: dict[str, str]) -> None:
    response = await api.client.post(
        "/bat/messagelist",
        json={"messages": [{**SMS, "customerMessageId": "c-1"}]},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["messagelistId"], int)
    (entry,) = body["messages"]
    assert entry["status"] == "accepted"
    assert (entry["parts"], entry["customerMessageId"], entry["to"]) == (1, "c-1", SMS["to"])
    status = await api.client.get(f"/bat/message/{entry['messageId']}", headers=headers)
    assert status.status_code == 200
    view = status.json()
    assert view["messageId"] == entry["messageId"]
    assert view["messagelistId"] == body["messagelistId"]
    assert (view["deliverystatus"], view["partscount"]) == ("scheduled", 1)
    assert "cost" not in view


# -- 401 ----------------------------------------------------------------------------------

UNAUTHORIZED: list[tuple[str, dict[str, str]]] = [
    ("none", {}),
    ("wrong-key", key("not-a-key")),
    ("empty-key", key("")),
    ("wrong-password", basic("alice", "wrong")),
    ("unknown-user", basic("mallory", PASSWORD)),
    ("key-as-password-wrong", basic("@", "not-a-key")),
    ("no-colon", {"Authorization": "Basic " + base64.b64encode(b"alice").decode()}),
    ("malformed-base64", {"Authorization": "Basic !!!"}),
    ("bearer", {"Authorization": f"Bearer {KEY_A}"}),
    ("disabled-by-key", key(KEY_C)),
    ("disabled-by-login", basic("carol", PASSWORD)),
]
ROUTES = [("POST", "/bat/messagelist"), ("GET", "/bat/message/0123456789abcdef012345")]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=["send", "status"])
@pytest.mark.parametrize("headers", [pytest.param(h, id=name) for name, h in UNAUTHORIZED])
async def test_unauthorized(api: Api, method: str, path: str, headers: dict[str, str]) -> None:
    content = orjson.dumps({"messages": [SMS]}) if method == "POST" else None
    response = await api.client.request(method, path, headers=headers, content=content)
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"] == WWW_AUTHENTICATE


# -- 404, 405 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/bat/nothing"),
        ("GET", "/bat/message/"),
        ("GET", "/bat/message/abc/def"),
        ("GET", "/bat"),
    ],
)
async def test_unknown_route(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path, headers=ALICE, follow_redirects=False)
    assert_error(response, 404, "NOT_FOUND")


async def test_unknown_and_foreign_message_ids_answer_alike(api: Api) -> None:
    (mid,) = await api.send(SMS, headers=BOB)
    unknown = "0" * len(mid)
    # The same request id for both: each response echoes it (X-Request-Id).
    same = {**ALICE, "X-Request-Id": "same-request"}
    foreign = await api.client.get(f"/bat/message/{mid}", headers=same)
    missing = await api.client.get(f"/bat/message/{unknown}", headers=same)
    assert_error(foreign, 404, "NOT_FOUND")
    assert_error(missing, 404, "NOT_FOUND")
    assert foreign.content.replace(mid.encode(), unknown.encode()) == missing.content
    assert dict(foreign.headers) == dict(missing.headers)


async def test_very_long_message_id(api: Api) -> None:
    response = await api.client.get("/bat/message/" + "a" * 5000, headers=ALICE)
    assert_error(response, 404, "NOT_FOUND")
    assert len(response.content) < 500


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/bat/messagelist"),
        ("PUT", "/bat/messagelist"),
        ("DELETE", "/bat/messagelist"),
        ("POST", "/bat/message/0123456789abcdef012345"),
        ("PATCH", "/bat/message/0123456789abcdef012345"),
        ("POST", "/healthz"),
    ],
)
async def test_method_not_allowed(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path, headers=ALICE)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "allow" in response.headers


# -- 400 ---------------------------------------------------------------------------------

BAD_BODIES: list[tuple[str, bytes]] = [
    ("not-json", b"hello"),
    ("truncated", b'{"messages": [{"to": '),
    ("empty", b""),
    ("no-messages-key", b"{}"),
    ("messages-not-a-list", b'{"messages": {"to": "+380501234567"}}'),
    ("messages-a-string", b'{"messages": "x"}'),
    ("empty-list", b'{"messages": []}'),
    ("empty-array", b"[]"),
    ("element-not-object", b'{"messages": [1]}'),
    ("one-bad-element", b'{"messages": [{"to": "+380501234567"}, "x"]}'),
    ("json-string", b'"messages"'),
    ("json-null", b"null"),
    ("nan", b'{"messages": [NaN]}'),
    ("latin-1", '{"messages": [{"text": "é"}]}'.encode("latin-1")),
    ("deep", b"[" * 100_000 + b"]" * 100_000),
]


@pytest.mark.parametrize("body", [pytest.param(b, id=name) for name, b in BAD_BODIES])
async def test_bad_request(api: Api, body: bytes) -> None:
    response = await api.client.post(
        "/bat/messagelist",
        content=body,
        headers={**ALICE, "content-type": "application/json"},
    )
    assert_error(response, 400, "INVALID_REQUEST")
    with raw_connection(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (0,)


async def test_bare_array_is_accepted(api: Api) -> None:
    response = await api.client.post("/bat/messagelist", json=[SMS, SMS], headers=ALICE)
    assert response.status_code == 200
    assert [m["status"] for m in response.json()["messages"]] == ["accepted", "accepted"]


async def test_one_bad_message_does_not_sink_the_batch(api: Api) -> None:
    bad = {**SMS, "to": "12", "customerMessageId": "bad-1"}
    response = await api.client.post("/bat/messagelist", json=[SMS, bad], headers=ALICE)
    assert response.status_code == 200
    good, rejected = response.json()["messages"]
    assert good["status"] == "accepted"
    assert rejected["status"] == "rejected"
    assert rejected["messageId"] is None
    assert rejected["error"]["code"] == "INVALID_RECIPIENT"
    assert rejected["customerMessageId"] == "bad-1"


class Item(BaseModel):
    name: str
    count: int


def validation_app() -> FastAPI:
    """FastAPI's own request validation (422 by default), answered by our handlers."""
    app = FastAPI()
    install_handlers(app)

    @app.get("/items/{item_id}")
    async def item(item_id: int, limit: int = 10) -> dict[str, int]:
        return {"item": item_id, "limit": limit}

    @app.post("/items")
    async def create(item: Item = Body()) -> dict[str, str]:  # noqa: B008
        return {"name": item.name}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/items/abc", None, 400, "INVALID_REQUEST"),
        ("GET", "/items/1?limit=many", None, 400, "INVALID_REQUEST"),
        ("POST", "/items", b'{"name": "x"}', 400, "INVALID_REQUEST"),
        ("POST", "/items", b'{"name": "x", "count": "lots"}', 400, "INVALID_REQUEST"),
        ("POST", "/items", b"not json", 400, "INVALID_REQUEST"),
        ("POST", "/items", None, 400, "INVALID_REQUEST"),
        ("GET", "/nowhere", None, 404, "NOT_FOUND"),
        ("DELETE", "/items/1", None, 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/boom", None, 500, "INTERNAL_ERROR"),
    ],
)
async def test_framework_errors_are_mapped(
    method: str, path: str, body: bytes | None, status: int, code: str
) -> None:
    transport = httpx.ASGITransport(validation_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
    error = assert_error(response, status, code)
    assert "secret internals" not in error["message"]


# -- 413 -------------------------------------------------------------------------------


@pytest.fixture
async def small_api(accounts: str) -> AsyncIterator[Api]:
    async with running(accounts, max_messages_per_request=3, max_body_bytes=4096) as a:
        yield a


@pytest.mark.parametrize(("count", "status"), [(3, 200), (4, 413), (50, 413)])
async def test_too_many_messages(small_api: Api, count: int, status: int) -> None:
    response = await small_api.client.post(
        "/bat/messagelist", json={"messages": [SMS] * count}, headers=ALICE
    )
    if status == 200:
        assert len(response.json()["messages"]) == count
    else:
        assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def big_body(size: int) -> bytes:
    text = "x" * size
    return orjson.dumps({"messages": [{**SMS, "text": text}]})


async def test_body_too_large_by_length(small_api: Api) -> None:
    response = await small_api.client.post(
        "/bat/messagelist",
        content=big_body(5000),
        headers={**ALICE, "content-type": "application/json"},
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_body_too_large_streamed(small_api: Api) -> None:
    body = big_body(20_000)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    response = await small_api.client.post(
        "/bat/messagelist",
        content=chunks(),
        headers={**ALICE, "content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_body_just_under_the_limit(small_api: Api) -> None:
    body = big_body(100)
    assert len(body) < 4096
    response = await small_api.client.post(
        "/bat/messagelist", content=body, headers={**ALICE, "content-type": "application/json"}
    )
    assert response.status_code == 200


# -- 429 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=["send", "status"])
async def test_rate_limited(accounts: str, method: str, path: str) -> None:
    limits = RateLimitSettings(enabled=True, rate=0.001, burst=2)
    async with running(accounts, rate_limit=limits) as api:
        content = orjson.dumps({"messages": [SMS]}) if method == "POST" else None
        answers = [
            await api.client.request(method, path, headers=ALICE, content=content) for _ in range(3)
        ]
        assert all(r.status_code != 429 for r in answers[:2])
        assert_error(answers[2], 429, "RATE_LIMITED")
        assert int(answers[2].headers["retry-after"]) >= 1
        # Another account has its own bucket.
        other = await api.client.request(method, path, headers=BOB, content=content)
        assert other.status_code != 429


# -- the status fast path and the cache of final statuses -------------------------------


Headers = dict[str, str] | list[tuple[str, str]]


async def compare_paths(api: Api, path: str, headers: Headers) -> httpx.Response:
    """The same request answered by the fast path and, under a root path (which the fast
    path leaves alone), by the FastAPI route: status, body and headers must agree."""
    fast = await api.client.get(path, headers=headers)
    routed = await api.mounted.get(path, headers=headers)
    assert (fast.status_code, fast.content) == (routed.status_code, routed.content)
    for header in ("content-type", "www-authenticate", "retry-after"):
        assert fast.headers.get(header) == routed.headers.get(header), header
    return fast


StatusCase = Callable[[list[str]], tuple[str, Headers]]
FAST_PATH_CASES: list[tuple[str, StatusCase]] = [
    ("scheduled", lambda ids: (f"/bat/message/{ids[0]}", ALICE)),
    ("final", lambda ids: (f"/bat/message/{ids[1]}", ALICE)),
    ("final-fallback", lambda ids: (f"/bat/message/{ids[2]}", ALICE)),
    ("unknown", lambda ids: ("/bat/message/ffffffffffffffffffffff", ALICE)),
    ("other-account", lambda ids: (f"/bat/message/{ids[1]}", BOB)),
    ("no-credentials", lambda ids: (f"/bat/message/{ids[1]}", {})),
    ("basic-login", lambda ids: (f"/bat/message/{ids[1]}", basic("alice", PASSWORD))),
    ("query-string", lambda ids: (f"/bat/message/{ids[1]}?x=1", ALICE)),
    ("percent-encoded-id", lambda ids: ("/bat/message/%2541", ALICE)),
    (
        "repeated-key-header",
        lambda ids: (
            f"/bat/message/{ids[1]}",
            [("X-Authorization-Key", "not-a-key"), ("X-Authorization-Key", KEY_A)],
        ),
    ),
    ("non-ascii-id", lambda ids: ("/bat/message/%C3%BC", ALICE)),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=name) for name, c in FAST_PATH_CASES])
async def test_fast_path_answers_like_the_route(api: Api, case: StatusCase) -> None:
    fallback = {
        **SMS,
        "type": "viber_promo",
        "to": "+380501230003",
        "fallback": {"type": "sms", "text": "hello by sms"},
    }
    finals = await api.send(SMS, fallback)
    await finish_all(api.database_url)
    (scheduled,) = await api.send(SMS)
    path, headers = case([scheduled, *finals])
    # Twice: the second answer of a final status comes from the cache.
    await compare_paths(api, path, headers)
    await compare_paths(api, path, headers)


async def test_final_status_is_served_from_the_cache(api: Api) -> None:
    (mid,) = await api.send(SMS)
    await finish_all(api.database_url)
    first = await api.client.get(f"/bat/message/{mid}", headers=ALICE)
    assert first.status_code == 200
    assert first.json()["deliverystatus"] == "delivered"
    assert first.json()["cost"] == 0.0  # no rates in this rate book
    second = await api.client.get(f"/bat/message/{mid}", headers=ALICE)
    assert second.content == first.content
    # Final statuses never change, so the answer no longer needs the row at all.
    with raw_connection(api.database_url) as conn:
        conn.execute("DELETE FROM messages WHERE id = ?", (mid,))
    third = await api.client.get(f"/bat/message/{mid}", headers=ALICE)
    assert third.content == first.content
    # The cache still answers only the owner.
    assert_error(await api.client.get(f"/bat/message/{mid}", headers=BOB), 404, "NOT_FOUND")


async def test_non_final_status_is_not_cached(api: Api) -> None:
    (mid,) = await api.send(SMS)
    before = await api.client.get(f"/bat/message/{mid}", headers=ALICE)
    assert before.json()["deliverystatus"] == "scheduled"
    await finish_all(api.database_url)
    after = await api.client.get(f"/bat/message/{mid}", headers=ALICE)
    assert after.json()["deliverystatus"] == "delivered"
    assert "cost" in after.json()
