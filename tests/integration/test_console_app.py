"""The console's guards through the real app in-process, on each backend: what a
session cookie is and is not good for, failed logins throttled, the console switched
off, and a new API key shown once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from integration_support import make_account

from batgate.api.app import create_app
from batgate.config import AuthSettings, ConsoleSettings, RateLimitSettings, Settings
from batgate.domain.credentials import hash_password
from batgate.store.manager import Store

KEY, PASSWORD = "key-of-alice", "an-operator-password"
App = Callable[..., Any]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[App]:
    """A factory of the real app (no engine) on a database with an operator `ops` and
    an account `alice` (KEY; password PASSWORD, the operator's too)."""
    store = Store.connect(database_url)
    try:
        await store.upgrade()
        await make_account(store, "alice", key=KEY)
        await store.update_account("alice", password_hash=hash_password(PASSWORD))
        await store.operators.create("ops", hash_password(PASSWORD), 0.0)
    finally:
        await store.close()
    async with AsyncExitStack() as stack:

        async def start(**settings: Any) -> httpx.AsyncClient:
            values = {"database_url": database_url, "rate_limit": RateLimitSettings(enabled=False)}
            made = create_app(Settings.model_construct(**(values | settings)), workers=False)
            manager = await stack.enter_async_context(LifespanManager(made))
            transport = httpx.ASGITransport(manager.app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://t")
            )

        yield start


async def log_in(
    client: httpx.AsyncClient, name: str = "ops", password: str = PASSWORD, **headers: str
) -> httpx.Response:
    form = await client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    data = {"csrf": token.group(1), "name": name, "password": password, "next": "/console/"}
    return await client.post("/console/login", data=data, headers=headers)


async def test_a_session_opens_the_console_and_nothing_else(app: App) -> None:
    client = await app()
    answer = await log_in(client)
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/")
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http here
    assert (await client.get("/console/")).status_code == 200
    session = client.cookies["batgate_console"]
    # The session is no credential for the API, even sent there by hand.
    api = await client.get("/bat/suppressions", headers={"Cookie": f"batgate_console={session}"})
    assert api.status_code == 401


async def test_behind_tls_the_cookie_is_secure(app: App) -> None:
    client = await app()
    answer = await log_in(client, **{"X-Forwarded-Proto": "https"})
    assert "Secure" in answer.headers["set-cookie"]


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("alice", PASSWORD),  # an account's name and password: not an operator
        ("alice", KEY),  # an account's API key: neither
        ("ops", KEY),
        ("ops", ""),
    ],
)
async def test_only_operators_log_in(app: App, name: str, password: str) -> None:
    client = await app()
    answer = await log_in(client, name, password)
    assert answer.status_code == 401
    assert "batgate_console=" not in answer.headers.get("set-cookie", "")
    assert (await client.get("/console/")).status_code == 303


async def test_failed_logins_are_throttled(app: App) -> None:
    client = await app(auth=AuthSettings(failures_per_username=3, failures_per_address=100))
    codes = [(await log_in(client, "ops", f"wrong-{i}")).status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]
    throttled = await log_in(client)  # the right password waits its turn too
    assert throttled.status_code == 429
    assert "Too many failed logins" in throttled.text


async def test_pages_and_actions_need_a_session(app: App) -> None:
    client = await app()
    for path in ("/console/", "/console/messages", "/console/accounts", "/console/webhooks"):
        answer = await client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith(
            "/console/login?next=/console/"
        )
    post = await client.post("/console/accounts/alice/disable", data={"csrf": "x"})
    assert post.status_code == 303  # to the login page, and nothing done
    listed = await client.get("/bat/suppressions", headers={"X-Authorization-Key": KEY})
    assert listed.status_code == 200  # alice was not disabled


async def test_the_console_can_be_switched_off(app: App) -> None:
    client = await app(console=ConsoleSettings(enabled=False))
    assert (await client.get("/console/login")).status_code == 404
    assert (await client.get("/console/")).status_code == 404


async def test_a_new_key_is_shown_once(app: App) -> None:
    client = await app()
    await log_in(client)
    page = await client.get("/console/accounts")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    rotated = await client.post("/console/accounts/alice/rotate-key", data={"csrf": csrf.group(1)})
    key = re.search(r'<code id="api-key">([^<]+)</code>', rotated.text)
    assert key is not None
    new_key = key.group(1)
    assert new_key not in (await client.get("/console/accounts")).text
    old = await client.get("/bat/suppressions", headers={"X-Authorization-Key": KEY})
    new = await client.get("/bat/suppressions", headers={"X-Authorization-Key": new_key})
    assert (old.status_code, new.status_code) == (401, 200)


async def test_an_account_gets_a_rate_limit_of_its_own(app: App) -> None:
    client = await app(rate_limit=RateLimitSettings(rate=1000, burst=1000), auth_cache_seconds=0)
    await log_in(client)
    page = await client.get("/console/accounts")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "rate": "0.5", "burst": "2"}
    assert (await client.post("/console/accounts/alice/rate-limit", data=form)).status_code == 303
    headers = {"X-Authorization-Key": KEY}
    codes = [(await client.get("/bat/suppressions", headers=headers)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = await client.get("/bat/suppressions", headers=headers)
    assert "at most 0.5/s with bursts of 2" in refused.text
    bad = await client.post("/console/accounts/alice/rate-limit", data=form | {"rate": "-1"})
    assert bad.status_code == 403


async def test_the_csv_export_does_not_hand_a_spreadsheet_formulas(app: App) -> None:
    client = await app()
    message = {"type": "sms", "from": "Shop", "to": "+380501234567", "text": "hi"}
    sent = await client.post(
        "/bat/messagelist",
        json=[message | {"customerMessageId": '=HYPERLINK("http://x","y")'}, message],
        headers={"X-Authorization-Key": KEY},
    )
    assert sent.status_code == 200
    await log_in(client)
    export = await client.get("/console/messages.csv?to=380501234567")
    assert export.status_code == 200
    assert export.headers["content-disposition"].startswith("attachment;")
    rows = export.text.splitlines()
    assert rows[0].startswith("messageId,createdAt,account,to,")
    assert len(rows) == 3
    assert any('"\'=HYPERLINK(""http://x"",""y"")"' in row for row in rows[1:])
    assert not any(",=HYPERLINK" in row or ',"=HYPERLINK' in row for row in rows)
