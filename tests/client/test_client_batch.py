"""The SDK's batch reads: `statuses()` through `POST /bat/message/status` (with its fallback
to one GET per id), and the pages of a message list (`messagelist`, `iter_messagelist`).

The core driven by hand (answers from a function, a clock the test moves); then
both clients against the real app in-process and a live server; then against the
scripted HTTP server, as an endpoint without the route; then `batgate report --messages`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from client_support import Answer as Scripted
from client_support import (
    Answerer,
    Clock,
    Driver,
    MakeClient,
    ScriptedServer,
    Seen,
    Target,
    error_answer,
    status_doc,
)
from typer.testing import CliRunner

from batgate.cli.main import app
from batgate.client import (
    AuthenticationError,
    BatgateError,
    MessagelistPage,
    NotFoundError,
    ProtocolError,
    ServerError,
    StatusCache,
    sms,
)
from batgate.client.core import ClientOptions, Core
from batgate.client.retry import Retries

BULK = "/bat/message/status"
OK = "+380501234567"

# -- the core, driven by hand ------------------------------------------------------------------


def make_core(driver: Driver, **options: Any) -> Core:
    opts: ClientOptions = {"api_key": "k", "retries": Retries.off(), **options}  # type: ignore[typeddict-item]
    return Core("http://gw.test", opts, clock=driver.clock)


def doc(mid: str, status: str = "delivered") -> dict[str, Any]:
    final = status in ("delivered", "undeliverable", "permanenterror")
    return {"messageId": mid, "deliverystatus": status, **({"cost": 0.05} if final else {})}


def error(code: str, message: str = "scripted") -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def batgate(entry: Callable[[str], dict[str, Any]] = doc, bulk: Answerer | None = None) -> Answerer:
    """A batgate: the GET answers `entry(id)` (404 for an error entry); the POST answers
    the entries of its ids, or `bulk(request)` when given."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            found = entry(request.url.path.rsplit("/", 1)[-1])
            return httpx.Response(404 if "error" in found else 200, json=found)
        if bulk is not None:
            return bulk(request)
        ids = json.loads(request.content)["messageIds"]
        return httpx.Response(200, json={"messages": [entry(mid) for mid in ids]})

    return answer


def asked_ids(request: httpx.Request) -> list[str]:
    return list(json.loads(request.content)["messageIds"])


@pytest.mark.parametrize(
    ("n", "sizes"),
    [(2, [2]), (999, [999]), (1000, [1000]), (1001, [1000, 1]), (2500, [1000, 1000, 500])],
)
def test_statuses_go_in_chunks_of_1000_and_come_back_in_input_order(
    n: int, sizes: list[int]
) -> None:
    driver = Driver(batgate(), Clock())
    ids = [f"m{i}" for i in range(n)]
    asked = [*ids, ids[0], ids[-1]]  # duplicates keep their places
    results = driver.run(make_core(driver).statuses(asked, concurrency=3))
    assert [r.message_id for r in results] == asked
    assert all(r.ok and r.status.message_id == r.message_id for r in results)
    posts = driver.requests("POST")
    assert [len(asked_ids(p)) for p in posts] == sizes and not driver.requests("GET")
    assert [mid for p in posts for mid in asked_ids(p)] == ids  # each id asked once
    assert posts[0].url.path == BULK


def test_a_single_id_is_a_get() -> None:
    driver = Driver(batgate(), Clock())
    core = make_core(driver)
    (result,) = driver.run(core.statuses(["m1"]))
    assert result.ok and [r.method for r in driver.requests()] == ["GET"]
    assert core.bulk_status is None  # nothing learnt about the route


NO_ROUTE = [
    ("404 (SMSBAT)", 404, error("NOT_FOUND")),
    ("405 (batgate before the route)", 405, error("METHOD_NOT_ALLOWED")),
    ("405 without a SPEC body", 405, {"detail": "Method Not Allowed"}),
]


@pytest.mark.parametrize(
    ("status", "body"), [pytest.param(s, b, id=name) for name, s, b in NO_ROUTE]
)
def test_without_the_route_it_reads_one_by_one_and_remembers(status: int, body: Any) -> None:
    driver = Driver(batgate(bulk=lambda r: httpx.Response(status, json=body)), Clock())
    core = make_core(driver)
    first = driver.run(core.statuses(["a", "b", "c"]))
    assert [r.status.message_id for r in first] == ["a", "b", "c"]
    assert [r.method for r in driver.requests()] == ["POST", "GET", "GET", "GET"]
    assert core.bulk_status is False
    again = driver.run(core.wait_for_all(["d", "e"]))
    assert [s.message_id for s in again] == ["d", "e"]
    assert len(driver.requests("POST")) == 1  # never asked again


@pytest.mark.parametrize(
    ("status", "body", "raised"),
    [
        (400, error("INVALID_REQUEST"), BatgateError),
        (422, error("INVALID_REQUEST"), BatgateError),
        (500, error("INTERNAL_ERROR"), ServerError),
        (200, {"not": "messages"}, ProtocolError),
        (200, {"messages": [doc("a")]}, ProtocolError),  # one entry for two ids
    ],
    ids=["400", "422", "500", "no-messages", "short"],
)
def test_a_failed_bulk_request_is_every_ids_error_and_no_fallback(
    status: int, body: Any, raised: type[BatgateError]
) -> None:
    driver = Driver(batgate(bulk=lambda r: httpx.Response(status, json=body)), Clock())
    core = make_core(driver)
    results = driver.run(core.statuses(["a", "b"]))
    assert all(isinstance(r.error, raised) and r.status is None for r in results)
    assert results[0].error is results[1].error
    assert not driver.requests("GET") and core.bulk_status is not False


def test_an_unauthorized_bulk_request_is_raised() -> None:
    driver = Driver(lambda r: httpx.Response(401, json=error("UNAUTHORIZED")), Clock())
    with pytest.raises(AuthenticationError):
        driver.run(make_core(driver).statuses(["a", "b"]))


ENTRIES: list[tuple[str, Any, type[BatgateError] | None, int | None, str | None]] = [
    ("a status", doc("x"), None, None, None),
    ("not found", {"messageId": "x", **error("NOT_FOUND")}, NotFoundError, 404, "NOT_FOUND"),
    ("another code", {"messageId": "x", **error("GONE")}, BatgateError, None, "GONE"),
    ("not an object", ["x"], ProtocolError, None, None),
    ("unknown status", {"messageId": "x", "deliverystatus": "lost"}, ProtocolError, None, None),
    ("another message", doc("y"), ProtocolError, None, None),
    ("error not an object", {"messageId": "x", "error": "NOT_FOUND"}, ProtocolError, None, None),
]


@pytest.mark.parametrize(
    ("entry", "raised", "status_code", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in ENTRIES],
)
def test_each_entry_is_its_ids_own_result(
    entry: Any, raised: type[BatgateError] | None, status_code: int | None, code: str | None
) -> None:
    """The entry for "x" between two good ones: only "x"'s result is affected."""
    driver = Driver(batgate(lambda mid: entry if mid == "x" else doc(mid)), Clock())
    before, x, after = driver.run(make_core(driver).statuses(["a", "x", "b"]))
    assert before.ok and after.ok
    if raised is None:
        assert x.ok and x.status.delivered
        return
    assert type(x.error) is raised and x.status is None
    assert (x.error.status_code, x.error.code) == (status_code, code)


def test_the_cache_spares_final_statuses_and_learns_from_bulk_answers() -> None:
    def entry(mid: str) -> dict[str, Any]:
        return doc(mid, "processing" if mid.startswith("p") else "delivered")

    driver = Driver(batgate(entry), Clock())
    core = make_core(driver, cache=StatusCache(ttl=0))
    driver.run(core.statuses(["d1", "d2", "p1", "p2"]))
    driver.run(core.statuses(["d1", "d2", "p1", "p2"]))
    assert [asked_ids(p) for p in driver.requests("POST")] == [
        ["d1", "d2", "p1", "p2"],
        ["p1", "p2"],  # the final ones came from the cache
    ]


def test_wait_for_all_polls_the_pending_ones_in_bulk() -> None:
    polls: dict[str, int] = {}

    def entry(mid: str) -> dict[str, Any]:
        polls[mid] = polls.get(mid, 0) + 1
        return doc(mid, "delivered" if polls[mid] >= int(mid[1:]) else "processing")

    driver = Driver(batgate(entry), Clock())
    final = driver.run(make_core(driver).wait_for_all(["m1", "m3", "m2", "m3"], timeout=60))
    assert [s.message_id for s in final] == ["m1", "m3", "m2", "m3"]
    assert [asked_ids(p) for p in driver.requests("POST")] == [["m1", "m3", "m2"], ["m3", "m2"]]
    assert [r.url.path for r in driver.requests("GET")] == ["/bat/message/m3"]  # one left


def test_bulk_requests_keep_to_the_rate_limit() -> None:
    driver = Driver(batgate(), Clock())
    ids = [f"m{i}" for i in range(3500)]
    driver.run(make_core(driver).statuses(ids, rate_limit=2, concurrency=4))
    times = [t for t, r in driver.calls]
    assert len(times) == 4
    assert all(b - a >= 0.5 - 1e-9 for a, b in zip(times, times[1:], strict=False))


def test_an_empty_id_is_refused_before_any_request() -> None:
    driver = Driver(batgate(), Clock())
    with pytest.raises(ValueError):
        driver.run(make_core(driver).statuses(["a", ""]))
    assert driver.calls == []


PAGE = {
    "messagelistId": 5,
    "total": 3,
    "counts": {"delivered": 2, "processing": 1},
    "cost": 0.1,
    "currency": "USD",
    "deliveryRate": 2 / 3,
    "messages": [doc("a"), doc("b", "processing")],
    "nextCursor": "b",
}


@pytest.mark.parametrize(
    ("limit", "cursor", "query"),
    [(100, None, "limit=100"), (2, "b", "limit=2&cursor=b"), (1000, "", "limit=1000")],
)
def test_a_page_of_a_list(limit: int, cursor: str | None, query: str) -> None:
    driver = Driver(lambda r: httpx.Response(200, json=PAGE), Clock())
    page = driver.run(make_core(driver).messagelist(5, limit=limit, cursor=cursor))
    (request,) = driver.requests()
    assert (request.url.path, request.url.query.decode()) == ("/bat/messagelist/5", query)
    assert isinstance(page, MessagelistPage)
    assert [s.message_id for s in page.messages] == ["a", "b"] and page.next_cursor == "b"
    assert (page.report.total, page.report.delivered, page.report.delivery_rate) == (3, 2, 2 / 3)
    assert "messages" not in page.report.raw and page.raw == PAGE


@pytest.mark.parametrize("limit", [0, 1001, -5])
def test_a_page_size_out_of_range_is_refused(limit: int) -> None:
    driver = Driver(lambda r: httpx.Response(200, json=PAGE), Clock())
    with pytest.raises(ValueError):
        driver.run(make_core(driver).messagelist(5, limit=limit))
    assert driver.calls == []


@pytest.mark.parametrize(
    "answer",
    [
        {k: v for k, v in PAGE.items() if k != "messages"},  # a server before paging
        {**PAGE, "messages": [{"deliverystatus": "delivered"}]},  # no messageId
        {**PAGE, "messages": "a, b"},
    ],
    ids=["no-messages", "no-message-id", "not-a-list"],
)
def test_a_page_off_the_contract_is_a_protocol_error(answer: Any) -> None:
    driver = Driver(lambda r: httpx.Response(200, json=answer), Clock())
    with pytest.raises(ProtocolError):
        driver.run(make_core(driver).messagelist(5))


@pytest.mark.parametrize("status", [404, 405])
def test_a_list_the_endpoint_does_not_have_is_explained(status: int) -> None:
    driver = Driver(lambda r: httpx.Response(status, json=error("X")), Clock())
    with pytest.raises(NotFoundError) as caught:
        driver.run(make_core(driver).messagelist(5))
    assert "batgate extension" in caught.value.message


# -- both clients, in-process and against a live server ----------------------------------------


def test_statuses_of_many_ids_in_order_through_the_real_server(client: Any) -> None:
    mine = client.send([sms(OK, f"m{i}") for i in range(3)]).message_ids
    unknown = [f"no-such-id-{i}" for i in range(1100)]
    asked = [mine[2], *unknown[:600], mine[0], *unknown[600:], mine[2], mine[1]]
    results = client.statuses(asked)
    assert client.core.bulk_status is True
    assert [r.message_id for r in results] == asked
    for mid, result in zip(asked, results, strict=True):
        if mid in mine:
            assert result.ok and result.status.message_id == mid
        else:
            assert isinstance(result.error, NotFoundError)
            assert (result.error.status_code, result.error.code) == (404, "NOT_FOUND")


def test_another_accounts_ids_are_not_found_in_bulk(
    make_client: MakeClient, target: Target
) -> None:
    alice = make_client()
    ids = alice.send([sms(OK, "a"), sms(OK, "b")]).message_ids
    results = make_client(api_key=target.bob_key).statuses(ids)
    assert all(isinstance(r.error, NotFoundError) for r in results)


def iterate(client: Any, target: Target, list_id: int, page_size: int) -> list[Any]:
    """`iter_messagelist` of either client, as a list."""
    found = client.iter_messagelist(list_id, page_size=page_size)
    if not hasattr(found, "__anext__"):
        return list(found)

    async def collect() -> list[Any]:
        return [status async for status in found]

    return target.loop.run(collect())


def test_the_pages_of_a_list_and_iterating_them(client: Any, target: Target) -> None:
    sent = client.send([sms(OK, f"m{i}") for i in range(7)] + [sms("+1", "rejected")])
    first = client.messagelist(sent.messagelist_id, limit=3)
    assert len(first.messages) == 3 and first.next_cursor == first.messages[-1].message_id
    assert (first.report.total, first.report.messagelist_id) == (7, sent.messagelist_id)
    second = client.messagelist(sent.messagelist_id, limit=3, cursor=first.next_cursor)
    assert second.messages[0].message_id > first.messages[-1].message_id
    every = iterate(client, target, sent.messagelist_id, page_size=2)
    assert [s.message_id for s in every] == sorted(sent.message_ids)
    client.wait_for_all(sent.message_ids, timeout=20)
    final = iterate(client, target, sent.messagelist_id, page_size=1000)
    assert all(s.delivered and s.cost == 0.05 for s in final)
    assert client.messagelist(sent.messagelist_id).report.delivery_rate == 1.0


def test_another_accounts_list_is_not_found(make_client: MakeClient, target: Target) -> None:
    list_id = make_client().send([sms(OK, "mine")]).messagelist_id
    with pytest.raises(NotFoundError):
        make_client(api_key=target.bob_key).messagelist(list_id)


# -- an endpoint without the route (the scripted server) ----------------------------------------


def _old_server(status: int) -> Callable[[Seen], Scripted]:
    def answer(seen: Seen) -> Scripted:
        if seen.method == "POST":
            return error_answer(status, "METHOD_NOT_ALLOWED" if status == 405 else "NOT_FOUND")
        return Scripted(200, status_doc(seen.path.rsplit("/", 1)[-1]))

    return answer


@pytest.mark.parametrize("status", [404, 405])
def test_a_client_remembers_an_endpoint_without_the_route(
    make_scripted_client: MakeClient, scripted: ScriptedServer, status: int
) -> None:
    scripted.default = _old_server(status)
    client = make_scripted_client()
    for ids in (["a", "b", "c"], ["d", "e"]):
        assert [r.status.message_id for r in client.statuses(ids)] == ids
    assert len(scripted.requests(BULK)) == 1
    assert len([s for s in scripted.requests() if s.method == "GET"]) == 5


def test_a_bulk_request_is_retried_like_any_read(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    entries = {"messages": [status_doc("a"), status_doc("b")]}
    scripted.on(BULK, error_answer(503, "INTERNAL_ERROR"), Scripted(200, entries))
    client = make_scripted_client(retries=Retries.exponential(retries=2, first=0.01))
    results = client.statuses(["a", "b"])
    assert all(r.ok for r in results) and len(scripted.requests(BULK)) == 2


# -- batgate report --messages --------------------------------------------------------------------


@pytest.mark.e2e
def test_report_lists_every_message_with_messages(server: Any, api_key: str) -> None:
    runner = CliRunner()
    env = {"BATGATE_URL": server.url, "BATGATE_API_KEY": api_key}
    sent = runner.invoke(
        app, ["send", "--to", OK, "--text", "hi", "--from", "Shop", "--json"], env=env
    )
    list_id = json.loads(sent.stdout)["messagelistId"]
    as_json = runner.invoke(app, ["report", str(list_id), "--messages", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["total"] == 1 and len(doc["messages"]) == 1
    assert doc["messages"][0]["messageId"] == json.loads(sent.stdout)["messages"][0]["messageId"]
    plain = runner.invoke(app, ["report", str(list_id)], env=env)
    assert plain.exit_code == 0 and "delivery rate" in plain.stdout
    table = runner.invoke(app, ["report", str(list_id), "--messages"], env=env)
    assert table.exit_code == 0 and doc["messages"][0]["messageId"][:8] in table.stdout
    without = runner.invoke(app, ["report", str(list_id), "--json"], env=env)
    assert "messages" not in json.loads(without.stdout)
