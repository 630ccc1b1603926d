"""Request ids, route metrics, access logs and probes of the real app, in process.

The app runs on the test's store database (the `store` fixture migrates it);
requests go through httpx's ASGI transport, so both the status fast path and
the FastAPI routes are exercised exactly as deployed.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from batgate.api.app import create_app
from batgate.config import Settings
from batgate.domain.credentials import key_hash, new_webhook_secret
from batgate.observability.logs import RequestIdFilter
from batgate.store.manager import Store

KEY = "telemetry-key-0123456789"
AUTH = {"X-Authorization-Key": KEY}
SMS = {"from": "Shop", "to": "+380501234567", "type": "sms", "text": "hi"}
GENERATED = re.compile(r"^[0-9a-f]{12}-[0-9a-f]+$")


@dataclass
class App:
    client: httpx.AsyncClient
    store: Store
    account_id: int

    async def send(self) -> str:
        response = await self.client.post("/bat/messagelist", json=[SMS], headers=AUTH)
        assert response.status_code == 200, response.text
        return str(response.json()["messages"][0]["messageId"])

    async def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = await self.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }


def url_of(store: Store) -> str:
    return store.db.writer.url.render_as_string(hide_password=False)


async def running_app(store: Store, **settings: Any) -> AsyncIterator[App]:
    account = await store.create_account(
        "tele", key_hash(KEY), None, None, new_webhook_secret(), "USD"
    )
    app = create_app(
        Settings(database_url=url_of(store), rate_limit={"enabled": False}, **settings),
        workers=False,
    )
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield App(client, store, account.id)


@pytest.fixture
async def api(store: Store) -> AsyncIterator[App]:
    async for app in running_app(store):
        yield app


# -- X-Request-Id --------------------------------------------------------------------

REQUESTS = [
    ("GET", "/bat/message/{mid}", AUTH, 200),  # the fast path
    ("GET", "/bat/message/unknown-id", AUTH, 404),
    ("GET", "/bat/message/{mid}", {}, 401),
    ("POST", "/bat/messagelist", AUTH, 200),  # FastAPI
    ("POST", "/bat/messagelist", {}, 401),
    ("GET", "/bat/messagelist/not-a-number", AUTH, 404),
    ("GET", "/healthz", {}, 200),
    ("GET", "/readyz", {}, 200),
    ("GET", "/no/such/route", {}, 404),
    ("PATCH", "/bat/message/{mid}", AUTH, 405),
    ("DELETE", "/bat/message/{mid}", AUTH, 200),  # cancels it (SPEC §12)
]


@pytest.mark.parametrize(("method", "path", "headers", "status"), REQUESTS)
@pytest.mark.parametrize("sent", ["client-id-42", None, "not valid!"])
async def test_every_response_carries_the_request_id(
    api: App, method: str, path: str, headers: dict[str, str], status: int, sent: str | None
) -> None:
    mid = await api.send()
    headers = dict(headers) | ({"X-Request-Id": sent} if sent is not None else {})
    body = [SMS] if method == "POST" else None
    response = await api.client.request(method, path.format(mid=mid), headers=headers, json=body)
    assert response.status_code == status, response.text
    echoed = response.headers["x-request-id"]
    if sent == "client-id-42":
        assert echoed == sent
    else:
        assert GENERATED.match(echoed), echoed


async def test_generated_ids_differ(api: App) -> None:
    ids = {(await api.client.get("/healthz")).headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20


# -- metrics ---------------------------------------------------------------------------


def http_count(scraped: dict[Any, float], method: str, route: str, status: str) -> float:
    labels = (("method", method), ("route", route), ("status", status))
    return scraped.get(("batgate_http_request_duration_seconds_count", labels), 0.0)


async def test_requests_are_counted_by_route_template(api: App) -> None:
    mid = await api.send()
    before = await api.scrape()
    for _ in range(3):
        await api.client.get(f"/bat/message/{mid}", headers=AUTH)
    await api.client.get("/bat/message/0000", headers=AUTH)
    await api.client.get(f"/bat/messagelist/{mid}", headers=AUTH)
    await api.client.get(f"/nothing/{mid}")
    await api.client.request("BREW", "/healthz")
    after = await api.scrape()

    def grew(method: str, route: str, status: str) -> float:
        return http_count(after, method, route, status) - http_count(before, method, route, status)

    assert grew("GET", "/bat/message/{messageId}", "200") == 3
    assert grew("GET", "/bat/message/{messageId}", "404") == 1
    assert grew("GET", "/bat/messagelist/{messagelistId}", "404") == 1
    assert grew("GET", "unmatched", "404") == 1
    assert grew("other", "/healthz", "405") == 1
    assert grew("GET", "/metrics", "200") == 1  # the first scrape
    # No raw path, and so no message id, in any label.
    assert not [key for key in after if any(mid in value for _, value in key[1])]


async def test_metrics_has_the_database_gauges(api: App) -> None:
    await api.send()
    scraped = await api.scrape()
    assert scraped[("batgate_database_up", ())] == 1
    assert scraped[("batgate_queue_messages", ())] == 1  # no engine in this app
    assert scraped[("batgate_queue_due_messages", ())] == 1
    assert scraped[("batgate_webhook_backlog_events", ())] == 0


async def test_metrics_can_be_switched_off(store: Store) -> None:
    async for app in running_app(store, metrics={"enabled": False}):
        assert (await app.client.get("/metrics")).status_code == 404
        assert (await app.client.get("/readyz")).status_code == 200


# -- logs ----------------------------------------------------------------------------


async def test_access_log(
    api: App, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    mid = await api.send()
    caplog.set_level(logging.INFO, logger="batgate.access")
    # A clock that moves a quarter of a second at each reading: a request's duration is
    # a few quarters, so `duration_ms` is a multiple of 250 below 25,000 in milliseconds
    # (under 250 in seconds, 250,000 and more in microseconds), however busy the host.
    readings = itertools.count()
    monkeypatch.setattr(time, "perf_counter", lambda: next(readings) * 0.25)
    await api.client.get(f"/bat/message/{mid}", headers=AUTH | {"X-Request-Id": "fast-1"})
    await api.client.post("/bat/messagelist", json=[SMS], headers=AUTH | {"X-Request-Id": "api-1"})
    await api.client.get("/healthz", headers={"X-Request-Id": "anon-1"})
    lines = {r.request_id: r for r in caplog.records if r.name == "batgate.access"}
    assert lines.keys() == {"fast-1", "api-1", "anon-1"}
    expected = {
        "fast-1": ("GET", "/bat/message/{messageId}", 200, api.account_id),
        "api-1": ("POST", "/bat/messagelist", 200, api.account_id),
        "anon-1": ("GET", "/healthz", 200, None),
    }
    for rid, (method, route, status, account) in expected.items():
        r: Any = lines[rid]
        assert (r.method, r.route, r.status, r.account_id) == (method, route, status, account)
        assert 250 <= r.duration_ms < 25_000 and r.duration_ms % 250 == 0, r.duration_ms
        assert mid not in r.getMessage()


async def test_access_log_is_off_by_default(api: App, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="batgate.access")
    await api.client.get("/healthz")
    assert not [r for r in caplog.records if r.name == "batgate.access"]


async def test_errors_carry_the_request_id_in_answer_and_log(
    api: App, caplog: pytest.LogCaptureFixture
) -> None:
    mid = await api.send()
    caplog.handler.addFilter(RequestIdFilter())
    # The messages table goes away under the running app: both routes fail inside.
    async with api.store.db.writer.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE messages RENAME TO messages_away"))
    try:
        fast = await api.client.get(f"/bat/message/{mid}", headers=AUTH | {"X-Request-Id": "e-1"})
        send = await api.client.post(
            "/bat/messagelist", json=[SMS], headers=AUTH | {"X-Request-Id": "e-2"}
        )
    finally:
        async with api.store.db.writer.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE messages_away RENAME TO messages"))
    for response, rid in ((fast, "e-1"), (send, "e-2")):
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "INTERNAL_ERROR"
        assert "Traceback" not in response.text
        assert response.headers["x-request-id"] == rid
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert rid in {getattr(r, "request_id", None) for r in errors}
