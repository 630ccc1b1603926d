"""Suppression lists (SPEC §11) on the real store of each backend, and through the real
app in-process: the list itself, the send path's OPTED_OUT, the API's answers, and
what a process remembers of whether an account has a list (store.suppressions)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from integration_support import Clock, make_account

from batgate.api.app import create_app
from batgate.config import RateLimitSettings, Settings
from batgate.domain.credentials import hash_password
from batgate.domain.optout import Source, Suppression
from batgate.domain.records import Account
from batgate.store.manager import Store
from batgate.store.suppressions import Suppressions
from databases import Raw, raw_connection

A, B, C, D = "+380501234567", "+380671234567", "+447911123456", "+14155552671"
NOW = 1_700_000_000.0


# -- the list ------------------------------------------------------------------------------


async def test_add_tells_which_numbers_are_new_and_keeps_the_first_entry(
    store: Store, account: Account
) -> None:
    listed = store.suppressions
    assert await listed.add(account.id, [A, B, A], Source.API, NOW) == {A, B}
    assert await listed.add(account.id, [B, C], Source.IMPORT, NOW + 5) == {C}
    entries = await listed.entries(account.id, [A, B, C, D])
    assert entries == {
        A: Suppression(A, "api", NOW),
        B: Suppression(B, "api", NOW),  # listed before: its source and time stay
        C: Suppression(C, "import", NOW + 5),
    }
    assert await listed.add(account.id, [], Source.CLI, NOW) == set()


async def test_pages_in_number_order(store: Store, account: Account) -> None:
    numbers = [f"+3805012340{i:02d}" for i in range(25)]
    await store.suppressions.add(account.id, numbers[::-1], Source.CLI, NOW)
    seen: list[str] = []
    after = None
    while True:
        page, more = await store.suppressions.page(account.id, after=after, limit=10)
        seen += [entry.number for entry in page]
        if not more:
            break
        after = page[-1].number
    assert seen == sorted(numbers)
    assert [e.number async for e in store.suppressions.every(account.id, page_size=7)] == seen


async def test_each_account_has_its_own_list(store: Store, account: Account) -> None:
    other = await make_account(store, "bob")
    await store.suppressions.add(account.id, [A], Source.API, NOW)
    assert await store.suppressions.suppressed(account.id, [A, B]) == {A}
    assert await store.suppressions.suppressed(other.id, [A, B]) == set()
    assert await store.suppressions.page(other.id, after=None, limit=10) == ([], False)
    assert await store.suppressions.remove(other.id, A) is None
    assert await store.suppressions.suppressed(account.id, [A]) == {A}


async def test_remove_answers_what_was_there(store: Store, account: Account, raw: Raw) -> None:
    await store.suppressions.add(account.id, [A, B], Source.CLI, NOW)
    assert await store.suppressions.remove(account.id, A) == Suppression(A, "cli", NOW)
    assert await store.suppressions.remove(account.id, A) is None
    assert await store.suppressions.suppressed(account.id, [A, B]) == {B}
    assert raw.scalar("SELECT count(*) FROM suppressions") == 1


async def test_a_lookup_of_many_numbers_finds_each_listed_one(
    store: Store, account: Account
) -> None:
    """More numbers than one IN-list holds (a batch of 1000 recipients and fallbacks)."""
    numbers = [f"+38050{i:07d}" for i in range(1500)]
    listed = numbers[::7]
    await store.suppressions.add(account.id, listed, Source.IMPORT, NOW)
    assert await store.suppressions.suppressed(account.id, numbers) == set(listed)
    assert await store.suppressions.suppressed(account.id, []) == set()


# -- what a process remembers ------------------------------------------------------------


async def test_another_process_sees_a_first_suppression_within_cache_seconds(
    store: Store, account: Account, database_url: str
) -> None:
    """The documented window: another process's first suppression of an account may be
    missed for at most `cache_seconds`; its own are seen at once, and once an account
    has a list every lookup reads it (a later addition anywhere counts at once)."""
    clock = Clock(1000.0)
    other = Store.connect(database_url)  # another process, as far as memory goes
    try:
        api = Suppressions(other.db, cache_seconds=1.0, clock=clock)
        assert await api.suppressed(account.id, [A, B]) == set()  # no list: remembered

        await store.suppressions.add(account.id, [A], Source.KEYWORD, NOW)
        assert await api.suppressed(account.id, [A, B]) == set()  # within the window
        clock.advance(1.01)
        assert await api.suppressed(account.id, [A, B]) == {A}  # asked again

        await store.suppressions.add(account.id, [B], Source.KEYWORD, NOW)
        assert await api.suppressed(account.id, [A, B]) == {A, B}  # has a list: read

        await store.suppressions.remove(account.id, A)
        await store.suppressions.remove(account.id, B)
        assert await api.suppressed(account.id, [A, B]) == set()
        assert await api.has_any(account.id)  # remembered: a lookup that finds nothing
        clock.advance(1.01)
        assert not await api.has_any(account.id)
    finally:
        await other.close()


async def test_a_process_knows_its_own_changes_at_once(store: Store, account: Account) -> None:
    clock = Clock(1000.0)
    listed = Suppressions(store.db, cache_seconds=60.0, clock=clock)
    assert not await listed.has_any(account.id)
    await listed.add(account.id, [A], Source.API, NOW)
    assert await listed.suppressed(account.id, [A]) == {A}
    await listed.remove(account.id, A)
    assert not await listed.has_any(account.id)


async def test_without_memory_every_lookup_reads(
    store: Store, account: Account, database_url: str
) -> None:
    other = Store.connect(database_url, suppression_cache_seconds=0)
    try:
        assert await other.suppressions.suppressed(account.id, [A]) == set()
        await store.suppressions.add(account.id, [A], Source.API, NOW)
        assert await other.suppressions.suppressed(account.id, [A]) == {A}
    finally:
        await other.close()


# -- through the app -----------------------------------------------------------------------

KEY = "alice-api-key-0123456789"
PASSWORD = "correct horse"
HEADERS = {"X-Authorization-Key": KEY}


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def sms(to: str, **extra: Any) -> dict[str, Any]:
    return {"from": "Shop", "to": to, "type": "sms", "text": "hello", **extra}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (no engine), on an account `alice` with KEY and PASSWORD."""
    store = Store.connect(database_url)
    try:
        await store.upgrade()
        await make_account(store, "alice", key=KEY)
        await store.update_account("alice", password_hash=hash_password(PASSWORD))
    finally:
        await store.close()
    settings = Settings.model_construct(
        database_url=database_url, rate_limit=RateLimitSettings(enabled=False)
    )
    app = create_app(settings, workers=False)
    async with AsyncExitStack() as stack:
        manager = await stack.enter_async_context(LifespanManager(app))
        yield await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url="http://t")
        )


async def send(client: httpx.AsyncClient, *messages: dict[str, Any], **headers: str) -> Any:
    response = await client.post(
        "/bat/messagelist", json={"messages": list(messages)}, headers={**HEADERS, **headers}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def suppress(client: httpx.AsyncClient, *numbers: str) -> Any:
    response = await client.post(
        "/bat/suppressions", json={"numbers": list(numbers)}, headers=HEADERS
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_send_to_a_suppressed_number_is_rejected_alone(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await suppress(client, B)
    answer = await send(client, sms(A), sms(B, customerMessageId="mine"), sms(C))
    first, opted_out, third = answer["messages"]
    assert (first["status"], third["status"]) == ("accepted", "accepted")
    assert opted_out == {
        "messageId": None,
        "status": "rejected",
        "error": {"code": "OPTED_OUT", "message": opted_out["error"]["message"]},
        "customerMessageId": "mine",
        "to": B,
    }
    assert B in opted_out["error"]["message"]
    with raw_connection(database_url) as db:
        stored = db.execute("SELECT recipient FROM messages ORDER BY recipient").all()
        assert [r for (r,) in stored] == sorted([A, C])  # nothing stored, nothing billed
        count = db.scalar(
            "SELECT message_count FROM messagelists WHERE id = ?", (answer["messagelistId"],)
        )
        assert count == 2


async def test_a_batch_of_only_opted_out_numbers_stores_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await suppress(client, A)
    answer = await send(client, sms(A), {**sms(B), "type": "viber_promo", "fallback": sms(A)})
    assert [m["error"]["code"] for m in answer["messages"]] == ["OPTED_OUT", "OPTED_OUT"]
    assert "fallback[0]: to:" in answer["messages"][1]["error"]["message"]
    with raw_connection(database_url) as db:
        assert db.scalar("SELECT count(*) FROM messages") == 0


async def test_other_problems_come_first(client: httpx.AsyncClient) -> None:
    await suppress(client, A)
    answer = await send(client, {**sms(A), "type": "fax"})
    assert answer["messages"][0]["error"]["code"] == "INVALID_TYPE"


async def test_a_removed_number_is_accepted_again_at_once(client: httpx.AsyncClient) -> None:
    await suppress(client, A)
    assert (await send(client, sms(A)))["messages"][0]["status"] == "rejected"
    response = await client.delete(f"/bat/suppressions/{A}", headers=HEADERS)
    assert response.status_code == 200, response.text
    assert response.json()["number"] == A
    assert (await send(client, sms(A)))["messages"][0]["status"] == "accepted"


async def test_a_replayed_send_answers_as_the_first_time(client: httpx.AsyncClient) -> None:
    await suppress(client, B)
    first = await send(client, sms(A), sms(B), **{"Idempotency-Key": "k-1"})
    response = await client.delete(f"/bat/suppressions/{B}", headers=HEADERS)
    assert response.status_code == 200
    again = await send(client, sms(A), sms(B), **{"Idempotency-Key": "k-1"})
    assert again == first
    assert [m["status"] for m in again["messages"]] == ["accepted", "rejected"]


@pytest.mark.parametrize("listed_first", [True, False], ids=["lifted-since", "listed-since"])
async def test_a_replay_without_its_kept_answer_answers_what_was_stored(
    client: httpx.AsyncClient, database_url: str, listed_first: bool
) -> None:
    """A key whose answer was not kept (a crash after the commit, or a retry racing the
    first request) is answered from what it stored, though the list changed since."""
    if listed_first:
        await suppress(client, B)
    first = await send(client, sms(A), sms(B), sms(C), **{"Idempotency-Key": "k-2"})
    with raw_connection(database_url) as db:
        db.execute("UPDATE idempotency_keys SET response = ''")  # as if never kept
    if listed_first:
        assert (await client.delete(f"/bat/suppressions/{B}", headers=HEADERS)).status_code == 200
    else:
        await suppress(client, B)
    again = await send(client, sms(A), sms(B), sms(C), **{"Idempotency-Key": "k-2"})
    assert [m["messageId"] for m in again["messages"]] == [
        m["messageId"] for m in first["messages"]
    ]
    assert [m["status"] for m in again["messages"]] == [m["status"] for m in first["messages"]]
    with raw_connection(database_url) as db:
        assert db.scalar("SELECT count(*) FROM messages") == (2 if listed_first else 3)


async def test_the_list_through_the_api(client: httpx.AsyncClient) -> None:
    added = await suppress(client, C, A, C)
    assert added["added"] == 2
    assert [(e["number"], e["source"], e["added"]) for e in added["suppressions"]] == [
        (C, "api", True),
        (A, "api", True),
    ]
    again = await suppress(client, A, B)
    assert again["added"] == 1
    assert [e["added"] for e in again["suppressions"]] == [False, True]
    assert again["suppressions"][0]["createdAt"] == added["suppressions"][1]["createdAt"]

    first = (await client.get("/bat/suppressions?limit=2", headers=HEADERS)).json()
    assert [e["number"] for e in first["suppressions"]] == [A, B]
    assert first["nextCursor"] == B.removeprefix("+")
    rest = await client.get(
        "/bat/suppressions", params={"after": first["nextCursor"]}, headers=HEADERS
    )
    assert rest.json()["nextCursor"] is None
    assert [e["number"] for e in rest.json()["suppressions"]] == [C]
    entry = rest.json()["suppressions"][0]
    assert set(entry) == {"number", "source", "createdAt"}
    assert entry["createdAt"].endswith("Z")
    with_plus = await client.get("/bat/suppressions", params={"after": B}, headers=HEADERS)
    assert with_plus.json() == rest.json()

    gone = await client.delete(f"/bat/suppressions/{C}", headers=HEADERS)
    assert gone.json() == entry
    encoded = await client.delete(f"/bat/suppressions/%2B{A[1:]}", headers=HEADERS)
    assert encoded.status_code == 200 and encoded.json()["number"] == A


NUMBERS = "/bat/suppressions"
ONE = f"/bat/suppressions/{A}"
CODES = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_REQUEST",
}
REFUSALS = {
    # id: (method, path, body, status, words of the message)
    "not-json": ("POST", NUMBERS, b"{", 400, "not valid JSON"),
    "an-array": ("POST", NUMBERS, b"[]", 422, '{"numbers"'),
    "no-numbers": ("POST", NUMBERS, b'{"numbers": []}', 422, "0 numbers"),
    "a-string": ("POST", NUMBERS, b'{"numbers": "+380501234567"}', 422, '{"numbers"'),
    "malformed": (
        "POST",
        NUMBERS,
        b'{"numbers": ["+380501234567", "0501234567", "+0123"]}',
        422,
        "nothing was added: numbers[1]: '0501234567' is not an E.164 number",
    ),
    "not-a-string": ("POST", NUMBERS, b'{"numbers": [7]}', 422, "numbers[0]: must be a string"),
    "too-many": ("POST", NUMBERS, orjson.dumps({"numbers": [A] * 1001}), 422, "1001 numbers"),
    "limit-0": ("GET", f"{NUMBERS}?limit=0", b"", 422, "limit"),
    "limit-1001": ("GET", f"{NUMBERS}?limit=1001", b"", 422, "limit"),
    "after-a-word": ("GET", f"{NUMBERS}?after=abc", b"", 422, "after"),
    "after-raw-plus": ("GET", f"{NUMBERS}?after=+380", b"", 422, "after"),  # "+" is a space
    "unlisted": ("DELETE", ONE, b"", 404, f"{A} is not on this account's suppression list"),
    "delete-malformed": ("DELETE", f"{NUMBERS}/0501234567", b"", 422, "is not an E.164"),
    "put": ("PUT", NUMBERS, b"", 405, ""),
    "get-one": ("GET", ONE, b"", 405, ""),
}


async def refused(
    client: httpx.AsyncClient, database_url: str, request: tuple[str, str, bytes], status: int
) -> str:
    """The SPEC §6 error's message; nothing was added."""
    method, path, body = request
    response = await client.request(method, path, content=body, headers=HEADERS)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and error["code"] == CODES[status], error
    with raw_connection(database_url) as db:
        assert db.scalar("SELECT count(*) FROM suppressions") == 0, "nothing was added"
    return str(error["message"])


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"), REFUSALS.values(), ids=REFUSALS
)
async def test_refusals(
    client: httpx.AsyncClient,
    database_url: str,
    method: str,
    path: str,
    body: bytes,
    status: int,
    words: str,
) -> None:
    message = await refused(client, database_url, (method, path, body), status)
    assert words in message


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", NUMBERS, b""),
        ("POST", NUMBERS, b'{"numbers": ["+380501234567"]}'),
        ("DELETE", ONE, b""),
    ],
)
async def test_every_route_wants_credentials(
    client: httpx.AsyncClient, method: str, path: str, body: bytes
) -> None:
    response = await client.request(method, path, content=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert response.headers["www-authenticate"] == 'Basic realm="batgate"'


async def test_basic_credentials_post_json_only(client: httpx.AsyncClient) -> None:
    body = b'{"numbers": ["+380501234567"]}'
    login = basic("alice", PASSWORD)
    response = await client.post(
        NUMBERS, content=body, headers=login | {"content-type": "text/plain"}
    )
    assert response.status_code == 415
    response = await client.post(
        NUMBERS, content=body, headers=login | {"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["added"] == 1


async def test_a_405_names_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    listed = await client.put("/bat/suppressions", headers=HEADERS)
    assert listed.headers["allow"] == "GET, POST"
    one = await client.get(f"/bat/suppressions/{A}", headers=HEADERS)
    assert one.headers["allow"] == "DELETE"
    # A path without parameters shadows a template that matches it too.
    bulk = await client.put("/bat/message/status", headers=HEADERS)
    assert (bulk.status_code, bulk.headers["allow"]) == (405, "POST")
    lookup = await client.put("/bat/message/0195f3c2a1b20a1b2c3d4e", headers=HEADERS)
    assert (lookup.status_code, lookup.headers["allow"]) == (405, "DELETE, GET")


async def test_concurrent_additions_of_one_number_list_it_once(
    client: httpx.AsyncClient, database_url: str
) -> None:
    answers = await asyncio.gather(*(suppress(client, A, f"+38050000{i:04d}") for i in range(8)))
    assert sum(a["suppressions"][0]["added"] for a in answers) == 1
    with raw_connection(database_url) as db:
        assert db.scalar("SELECT count(*) FROM suppressions WHERE number = ?", (A,)) == 1
