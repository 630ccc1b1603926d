"""Batch status against the real server: `POST /bat/message/status` and the pages of
`GET /bat/messagelist/{id}` (batgate extensions), followed until every message is final.
"""

from __future__ import annotations

import time

import pytest
from e2e_support import FINAL, RATES, Trace

pytestmark = pytest.mark.e2e

SMS = {"from": "Shop", "type": "sms", "text": "Spring sale"}
# Endings of the sandbox (SPEC §7) and the final status each leads to.
OUTCOMES = {"4567": "delivered", "0001": "undeliverable", "0002": "permanenterror"}


def batch(n):
    endings = list(OUTCOMES)
    return [{**SMS, "to": f"+38050123{endings[i % 3]}"} for i in range(n)]


def statuses(server, account, ids):
    response = server.http.post(
        "/bat/message/status", json={"messageIds": ids}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def page(server, account, list_id, **params):
    response = server.http.get(
        f"/bat/messagelist/{list_id}", params=params, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def follow(server, account, ids, timeout=15.0):
    """Poll all ids through POST /bat/message/status until final; the traces (SPEC §3 checked)."""
    traces = {mid: Trace(mid) for mid in ids}
    start = time.monotonic()
    while True:
        for mid, doc in zip(ids, statuses(server, account, ids), strict=True):
            assert doc["messageId"] == mid
            traces[mid].add(doc, time.monotonic() - start)
        if all(t.final["deliverystatus"] in FINAL for t in traces.values()):
            return traces
        assert time.monotonic() - start < timeout, "not final in time"
        time.sleep(0.1)


def test_a_batch_followed_through_bulk_statuses_and_pages(fast_server, alice):
    sent = fast_server.send(alice, batch(250))
    ids = [m["messageId"] for m in sent["messages"]]
    list_id = sent["messagelistId"]

    first = page(fast_server, alice, list_id, limit=10)
    assert first["total"] == 250 and len(first["messages"]) == 10
    assert first["nextCursor"] == first["messages"][-1]["messageId"]

    traces = follow(fast_server, alice, ids)
    for mid, to in zip(ids, (m["to"] for m in batch(250)), strict=True):
        traces[mid].assert_walk(OUTCOMES[to[-4:]])

    # Every page, following nextCursor: every message once, in id order, as GET answers it.
    pages, cursor = [], None
    while True:
        query = {"limit": 100} if cursor is None else {"limit": 100, "cursor": cursor}
        pages.append(page(fast_server, alice, list_id, **query))
        cursor = pages[-1]["nextCursor"]
        if cursor is None:
            break
    assert [len(p["messages"]) for p in pages] == [100, 100, 50]
    listed = [m for p in pages for m in p["messages"]]
    assert [m["messageId"] for m in listed] == sorted(ids)
    for doc in listed:
        assert doc == traces[doc["messageId"]].final == fast_server.status(alice, doc["messageId"])

    counts = dict.fromkeys(["scheduled", "processing", *OUTCOMES.values()], 0)
    for message in batch(250):
        counts[OUTCOMES[message["to"][-4:]]] += 1
    delivered = counts["delivered"]
    for p in pages:
        assert p["counts"] == counts
        assert p["deliveryRate"] == delivered / 250
        assert p["cost"] == pytest.approx(delivered * RATES["sms"])
        assert p["currency"] == "USD"


def test_bulk_statuses_keep_order_duplicates_and_answer_unknown_ids(fast_server, alice, bob):
    mine = [m["messageId"] for m in fast_server.send(alice, batch(3))["messages"]]
    theirs = fast_server.send_one(bob, {**SMS, "to": "+380501234567"})["messageId"]
    asked = [mine[2], theirs, "no-such-id", mine[0], mine[2], "x" * 100]
    answered = statuses(fast_server, alice, asked)
    assert [e["messageId"] for e in answered] == asked
    for mid, entry in zip(asked, answered, strict=True):
        if mid in mine:
            assert entry["deliverystatus"] in ("scheduled", "processing", *FINAL)
        else:
            assert entry["error"]["code"] == "NOT_FOUND" and set(entry) == {"messageId", "error"}
    # Bob sees his own, and none of alice's.
    as_bob = statuses(fast_server, bob, [theirs, mine[0]])
    assert as_bob[0]["messageId"] == theirs and "deliverystatus" in as_bob[0]
    assert as_bob[1]["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"hello", 400),
        (b'{"messageIds": []}', 422),
        (b'{"messageIds": [42]}', 422),
        (b'{"ids": ["a"]}', 422),
        (b'{"messageIds": [' + b",".join([b'"a"'] * 1001) + b"]}", 422),
    ],
    ids=["not-json", "empty", "not-strings", "no-messageIds", "1001-ids"],
)
def test_a_bad_bulk_request_is_refused(fast_server, alice, body, status):
    response = fast_server.http.post(
        "/bat/message/status",
        content=body,
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    fast_server.assert_error(response, status, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("limit=0", 422, "INVALID_REQUEST"),
        ("limit=5000", 422, "INVALID_REQUEST"),
        ("limit=ten", 422, "INVALID_REQUEST"),
        ("cursor=%2F%2F", 422, "INVALID_REQUEST"),
    ],
)
def test_a_bad_page_query_is_422(fast_server, alice, query, status, code):
    list_id = fast_server.send(alice, batch(1))["messagelistId"]
    response = fast_server.http.get(f"/bat/messagelist/{list_id}?{query}", headers=alice.headers)
    fast_server.assert_error(response, status, code)


def test_another_accounts_list_is_404_on_every_page(fast_server, alice, bob):
    list_id = fast_server.send(alice, batch(3))["messagelistId"]
    for query in ("", "?limit=1", f"?cursor={'0' * 22}"):
        response = fast_server.http.get(f"/bat/messagelist/{list_id}{query}", headers=bob.headers)
        fast_server.assert_error(response, 404, "NOT_FOUND")


def test_the_old_summary_fields_are_unchanged(fast_server, alice):
    sent = fast_server.send(alice, batch(2))
    summary = page(fast_server, alice, sent["messagelistId"])
    assert isinstance(summary["messagelistId"], int) and summary["total"] == 2
    assert set(summary["counts"]) == {
        "scheduled",
        "processing",
        "delivered",
        "undeliverable",
        "permanenterror",
    }
    assert isinstance(summary["cost"], float) and summary["currency"] == "USD"
    assert len(summary["messages"]) == 2 and summary["nextCursor"] is None
