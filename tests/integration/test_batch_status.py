"""Batch status: `GET /bat/messagelist/{id}` with its pages, and `POST /bat/message/status`.

The store's queries on the `store` fixture, and the real app in-process on the same
database; messages become final through the real dispatcher and sandbox carrier
(on a clock the test moves).
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from integration_support import Clock, make_account, new_message

from batgate.api.app import create_app
from batgate.channels.simulator import Simulator
from batgate.config import DispatcherSettings, RateLimitSettings, SandboxSettings, Settings
from batgate.domain.messages import Channel
from batgate.domain.pricing import Rate
from batgate.domain.records import Account
from batgate.engine.dispatcher import Dispatcher
from batgate.engine.ratebook import RateBook
from batgate.store.manager import Store
from batgate.store.schema import messages

T0 = 1_700_000_000.0
ALICE = {"X-Authorization-Key": "key-of-alice"}
BOB = {"X-Authorization-Key": "key-of-bob"}
OK, UNDELIVERABLE, PERMANENT = "+380501234567", "+380501230001", "+380501230002"
SMS_PRICE = 0.05


def sms(to: str = OK, text: str = "hello") -> dict[str, Any]:
    return {"from": "Shop", "to": to, "type": "sms", "text": text}


def url_of(store: Store) -> str:
    return store.db.writer.url.render_as_string(hide_password=False)


# -- the store ------------------------------------------------------------------------------


async def insert(store: Store, account: Account, n: int) -> tuple[int, list[str]]:
    return await store.insert_batch(account, [new_message() for _ in range(n)], T0)


@pytest.mark.parametrize(
    ("n", "limit"),
    [(0, 100), (1, 1), (7, 3), (100, 100), (101, 100), (250, 100), (1000, 1000)],
)
async def test_pages_walk_the_whole_list_in_id_order(
    store: Store, account: Account, n: int, limit: int
) -> None:
    list_id, ids = await insert(store, account, n)
    await insert(store, account, 5)  # another list of the account, never on these pages
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = await store.messagelist_page(account.id, list_id, after=after, limit=limit)
        assert page is not None
        pages += 1
        assert page.counts == ({"scheduled": (n, 0)} if n else {})
        assert len(page.records) <= limit
        assert all(r.messagelist_id == list_id for r in page.records)
        seen += [r.id for r in page.records]
        if not page.more:
            break
        after = page.records[-1].id
    assert seen == sorted(ids)
    assert pages == max(1, -(-n // limit))


@pytest.mark.parametrize("whose", ["another account's", "unknown"])
async def test_a_list_not_of_the_account_has_no_page(
    store: Store, account: Account, whose: str
) -> None:
    list_id, _ = await insert(store, account, 3)
    bob = await make_account(store, "bob")
    asked = (bob.id, list_id) if whose == "another account's" else (account.id, list_id + 1)
    assert await store.messagelist_page(*asked, after=None, limit=10) is None
    assert await store.messagelist_summary(*asked) is None


async def test_messages_of_reads_only_the_accounts_messages_in_few_queries(
    store: Store, account: Account
) -> None:
    _, mine = await insert(store, account, 1200)
    bob = await make_account(store, "bob")
    _, theirs = await insert(store, bob, 100)
    unknown = [f"{i:022x}" for i in range(50)]
    asked = mine + theirs + unknown + mine[:10]  # duplicates too
    selects: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM messages" in statement:
            selects.append(statement)

    engine = store.db.reader.sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        found = await store.messages_of(account.id, asked)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert set(found) == set(mine)
    assert all(found[mid].id == mid and found[mid].account_id == account.id for mid in mine)
    assert len(selects) == 2  # 1360 distinct ids: IN-lists of at most 1000


async def test_messages_of_nothing_reads_nothing(store: Store, account: Account) -> None:
    assert await store.messages_of(account.id, []) == {}


# -- the API in-process -----------------------------------------------------------------------


@dataclass
class Api:
    client: httpx.AsyncClient
    store: Store
    clock: Clock

    async def send(self, *batch: dict[str, Any], headers: dict[str, str] = ALICE) -> Any:
        response = await self.client.post(
            "/bat/messagelist", json={"messages": list(batch)}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, path: str, headers: dict[str, str] = ALICE) -> httpx.Response:
        return await self.client.get(path, headers=headers)

    async def statuses(self, ids: Any, headers: dict[str, str] = ALICE) -> httpx.Response:
        return await self.client.post(
            "/bat/message/status", json={"messageIds": ids}, headers=headers
        )

    async def finish_all(self) -> None:
        """The real dispatcher and sandbox, on the test's clock, until every message is final."""
        sandbox = Simulator(SandboxSettings(), clock=self.clock, rng=random.Random(0))
        rates = [Rate("sms", "", int(SMS_PRICE * 1_000_000), "USD")]
        dispatcher = Dispatcher(
            self.store,
            dict.fromkeys(Channel, sandbox),
            RateBook(self.store, rates),
            DispatcherSettings(),
            {"USD": 1.0, "EUR": 0.92},
            clock=self.clock,
        )
        for _ in range(400):
            await dispatcher.tick()
            if await self.open_messages() == 0:
                return
            self.clock.advance(0.5)
        pytest.fail("messages did not become final")

    async def open_messages(self) -> int:
        async with self.store.db.reader.connect() as conn:
            query = sa.select(sa.func.count()).where(messages.c.due_at.is_not(None))
            return int(await conn.scalar(query) or 0)


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    await make_account(store, "alice")
    await make_account(store, "bob", currency="EUR")
    settings = Settings.model_construct(
        database_url=url_of(store), rate_limit=RateLimitSettings(enabled=False)
    )
    app = create_app(settings, workers=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Api(client, store, Clock(time.time() + 1))


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"], body
    return str(body["error"]["message"])


async def documents(api: Api, ids: list[str], headers: dict[str, str] = ALICE) -> list[Any]:
    """What `GET /bat/message/{id}` answers for each id (parsed)."""
    answers = [await api.get(f"/bat/message/{mid}", headers) for mid in ids]
    assert all(a.status_code == 200 for a in answers)
    return [a.json() for a in answers]


async def walk(api: Api, list_id: int, limit: int | None) -> list[dict[str, Any]]:
    """Every page of the list, following nextCursor."""
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {k: v for k, v in (("limit", limit), ("cursor", cursor)) if v is not None}
        response = await api.client.get(f"/bat/messagelist/{list_id}", params=params, headers=ALICE)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["nextCursor"]
        if cursor is None:
            return pages


@pytest.mark.parametrize(
    ("n", "limit", "sizes"),
    [
        (5, None, [5]),
        (5, 2, [2, 2, 1]),
        (6, 3, [3, 3]),
        (1, 1, [1]),
        (150, None, [100, 50]),
        (150, 1000, [150]),
    ],
)
async def test_pages_hold_every_message_once_with_the_status_documents(
    api: Api, n: int, limit: int | None, sizes: list[int]
) -> None:
    sent = await api.send(*[sms(text=f"m{i}") for i in range(n)])
    ids = [m["messageId"] for m in sent["messages"]]
    pages = await walk(api, sent["messagelistId"], limit)
    assert [len(p["messages"]) for p in pages] == sizes
    listed = [m for p in pages for m in p["messages"]]
    assert [m["messageId"] for m in listed] == sorted(ids)
    assert listed == await documents(api, sorted(ids))
    for page in pages:  # the whole list's summary on every page
        assert page["total"] == n and page["counts"]["scheduled"] == n
        assert page["deliveryRate"] == 0.0 and page["cost"] == 0.0


async def test_summary_and_documents_once_final(api: Api) -> None:
    batch = [sms(OK), sms(OK), sms(OK), sms(UNDELIVERABLE), sms(PERMANENT), sms("+1", "bad")]
    sent = await api.send(*batch)
    ids = [m["messageId"] for m in sent["messages"] if m["messageId"]]
    await api.finish_all()
    before = await documents(api, sorted(ids))  # now also in the cache of final statuses
    (page,) = await walk(api, sent["messagelistId"], None)
    assert {k: page[k] for k in ("messagelistId", "total", "counts", "currency")} == {
        "messagelistId": sent["messagelistId"],
        "total": 5,
        "counts": {
            "scheduled": 0,
            "processing": 0,
            "delivered": 3,
            "undeliverable": 1,
            "permanenterror": 1,
        },
        "currency": "USD",
    }
    assert page["deliveryRate"] == 3 / 5
    assert page["cost"] == pytest.approx(3 * SMS_PRICE)
    assert page["messages"] == before
    assert page["nextCursor"] is None
    assert set(page) == {
        "messagelistId",
        "total",
        "counts",
        "cost",
        "currency",
        "deliveryRate",
        "messages",
        "nextCursor",
    }


async def test_a_list_of_rejected_messages_only(api: Api) -> None:
    sent = await api.send(sms("+1", "bad"))
    (page,) = await walk(api, sent["messagelistId"], None)
    assert (page["total"], page["deliveryRate"], page["messages"]) == (0, 0.0, [])


async def test_a_cursor_past_the_end_is_an_empty_last_page(api: Api) -> None:
    sent = await api.send(sms())
    response = await api.get(f"/bat/messagelist/{sent['messagelistId']}?cursor={'f' * 22}")
    assert response.status_code == 200
    assert (response.json()["messages"], response.json()["nextCursor"]) == ([], None)
    assert response.json()["total"] == 1


BAD_QUERIES = [
    "limit=0",
    "limit=1001",
    "limit=-1",
    "limit=1.5",
    "limit=abc",
    "limit=%205",
    "limit=%D9%A3",  # an Arabic-Indic digit three
    "limit=" + "9" * 5000,
    "cursor=a%20b",
    "cursor=" + "a" * 33,
    "cursor=%C3%A9",
    "cursor=..%2F",
    "cursor=%00",
    "limit=10&cursor=x-y",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
async def test_a_bad_limit_or_cursor_is_422(api: Api, query: str) -> None:
    sent = await api.send(sms())
    response = await api.get(f"/bat/messagelist/{sent['messagelistId']}?{query}")
    assert_error(response, 422, "INVALID_REQUEST")


@pytest.mark.parametrize("query", ["limit=1", "limit=1000", "limit=", "cursor=", "other=x"])
async def test_edge_queries_are_fine(api: Api, query: str) -> None:
    sent = await api.send(sms())
    response = await api.get(f"/bat/messagelist/{sent['messagelistId']}?{query}")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/bat/messagelist/{list}", BOB),
        ("/bat/messagelist/{list}?limit=5", BOB),
        ("/bat/messagelist/{next}", ALICE),
        ("/bat/messagelist/abc", ALICE),
        ("/bat/messagelist/-1", ALICE),
        ("/bat/messagelist/" + "9" * 30, ALICE),
    ],
    ids=["other-account", "other-account-paged", "unknown", "not-a-number", "negative", "huge"],
)
async def test_an_unknown_or_foreign_list_is_404(
    api: Api, path: str, headers: dict[str, str]
) -> None:
    sent = await api.send(sms())
    list_id = sent["messagelistId"]
    response = await api.get(path.format(list=list_id, next=list_id + 1), headers)
    message = assert_error(response, 404, "NOT_FOUND")
    if headers is BOB:  # just like an unknown id
        unknown = await api.get(f"/bat/messagelist/{list_id + 1}", BOB)
        assert message == assert_error(unknown, 404, "NOT_FOUND").replace(
            str(list_id + 1), str(list_id)
        )


# -- POST /bat/message/status ------------------------------------------------------------------


async def test_many_statuses_in_input_order_with_errors_in_place(api: Api) -> None:
    mine = [m["messageId"] for m in (await api.send(sms(), sms(UNDELIVERABLE)))["messages"]]
    (theirs,) = [m["messageId"] for m in (await api.send(sms(), headers=BOB))["messages"]]
    await api.finish_all()
    (scheduled,) = [m["messageId"] for m in (await api.send(sms()))["messages"]]
    asked = [mine[1], "nope", scheduled, theirs, mine[0], "x" * 65, mine[1], "", "y" * 64]
    response = await api.statuses(asked)
    assert response.status_code == 200, response.text
    answered = response.json()["messages"]
    assert len(answered) == len(asked)
    known = {mine[0], mine[1], scheduled}
    expected = dict(zip(known, await documents(api, list(known)), strict=True))
    for mid, entry in zip(asked, answered, strict=True):
        if mid in known:
            assert entry == expected[mid]
        else:
            assert set(entry) == {"messageId", "error"}
            assert entry["messageId"] == mid
            assert entry["error"]["code"] == "NOT_FOUND" and entry["error"]["message"]


async def test_another_accounts_message_is_an_unknown_one_even_when_cached(api: Api) -> None:
    (mid,) = [m["messageId"] for m in (await api.send(sms()))["messages"]]
    await api.finish_all()
    unknown = "0" * 22

    async def as_bob() -> list[Any]:
        answer: list[Any] = (await api.statuses([mid, unknown], BOB)).json()["messages"]
        return answer

    first = await as_bob()
    assert (await api.get(f"/bat/message/{mid}")).status_code == 200  # alice: now cached
    for entries in (first, await as_bob()):
        theirs, nobodys = entries
        assert theirs["error"] == nobodys["error"] | {"message": f"no message with id {mid!r}"}
        assert theirs["error"]["code"] == "NOT_FOUND"


async def test_final_statuses_come_from_the_cache(api: Api) -> None:
    ids = [m["messageId"] for m in (await api.send(sms(), sms()))["messages"]]
    await api.finish_all()
    first = await api.statuses(ids)  # reads the store and fills the cache
    async with api.store.db.writer.begin() as conn:
        await conn.execute(messages.delete().where(messages.c.id.in_(ids)))
    # Final statuses never change: the answer no longer needs the rows.
    again = await api.statuses(ids)
    assert again.content == first.content
    single = await api.get(f"/bat/message/{ids[0]}")
    assert orjson.loads(again.content)["messages"][0] == single.json()


async def test_non_final_statuses_are_read_again(api: Api) -> None:
    (mid,) = [m["messageId"] for m in (await api.send(sms()))["messages"]]
    before = (await api.statuses([mid])).json()["messages"][0]
    await api.finish_all()
    after = (await api.statuses([mid])).json()["messages"][0]
    assert (before["deliverystatus"], after["deliverystatus"]) == ("scheduled", "delivered")


async def test_a_thousand_ids_are_fine(api: Api) -> None:
    ids = [m["messageId"] for m in (await api.send(*[sms() for _ in range(600)]))["messages"]]
    asked = ids + [f"unknown-{i}" for i in range(400)]
    response = await api.statuses(asked)
    assert response.status_code == 200
    answered = response.json()["messages"]
    assert [e["messageId"] for e in answered] == asked
    assert all("deliverystatus" in e for e in answered[:600])
    assert all(e["error"]["code"] == "NOT_FOUND" for e in answered[600:])


BAD_BODIES = [
    (b"not json", 400),
    (b"", 400),
    (b'{"messageIds": [', 400),
    (b"{}", 422),
    (b"null", 422),
    (b'["a", "b"]', 422),
    (b'{"messageIds": null}', 422),
    (b'{"messageIds": "abc"}', 422),
    (b'{"messageIds": {"a": 1}}', 422),
    (b'{"messageIds": []}', 422),
    (orjson.dumps({"messageIds": ["a"] * 1001}), 422),
    (b'{"messageIds": [1]}', 422),
    (b'{"messageIds": ["a", null]}', 422),
    (b'{"messageIds": ["a", ["b"]]}', 422),
    (b'{"messageIds": ["a", {"id": "b"}]}', 422),
    (b'{"message_ids": ["a"]}', 422),
]


@pytest.mark.parametrize(
    ("body", "status"), BAD_BODIES, ids=[b[:24].decode() or "empty" for b, _ in BAD_BODIES]
)
async def test_a_bad_body_is_refused(api: Api, body: bytes, status: int) -> None:
    response = await api.client.post(
        "/bat/message/status",
        content=body,
        headers={**ALICE, "content-type": "application/json"},
    )
    assert_error(response, status, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/bat/message/status", b'{"messageIds": ["a"]}'),
        ("GET", "/bat/messagelist/1", None),
    ],
    ids=["statuses", "messagelist"],
)
async def test_both_need_credentials(api: Api, method: str, path: str, body: bytes | None) -> None:
    response = await api.client.request(method, path, content=body)
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"] == 'Basic realm="batgate"'


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/bat/message/status", b'{"messageIds": ["a"]}'),
        ("GET", "/bat/messagelist/1", None),
    ],
    ids=["statuses", "messagelist"],
)
async def test_both_are_rate_limited(
    store: Store, method: str, path: str, body: bytes | None
) -> None:
    await make_account(store, "alice")
    limits = RateLimitSettings(enabled=True, rate=0.001, burst=2)
    app = create_app(
        Settings.model_construct(database_url=url_of(store), rate_limit=limits), workers=False
    )
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers = [
                await client.request(method, path, content=body, headers=ALICE) for _ in range(3)
            ]
    assert all(a.status_code != 429 for a in answers[:2])
    assert_error(answers[2], 429, "RATE_LIMITED")
    assert int(answers[2].headers["retry-after"]) >= 1
