"""`Idempotency-Key` on `POST /bat/messagelist` against the real server (batgate extension)."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = pytest.mark.e2e

SMS = {"from": "Shop", "to": "+380501234567", "type": "sms", "text": "Order #1001 confirmed"}


def post(server, account, body, key=None, http=None):
    headers = {**account.headers, "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return (http or server.http).post("/bat/messagelist", content=body, headers=headers)


def body_of(*texts):
    return json.dumps({"messages": [{**SMS, "text": t} for t in texts]}).encode()


# (case, the second request's body, the same key?, expected status, error code or None)
SECOND = [
    ("same key and body: the first answer", body_of("a", "b"), True, 200, None),
    ("same key, another body", body_of("a", "c"), True, 422, "IDEMPOTENCY_KEY_REUSED"),
    ("same key, one more message", body_of("a", "b", "c"), True, 422, "IDEMPOTENCY_KEY_REUSED"),
    ("another key: a new list", body_of("a", "b"), False, 200, None),
]


@pytest.mark.parametrize(
    ("second", "same_key", "status", "code"), [pytest.param(*c[1:], id=c[0]) for c in SECOND]
)
def test_a_second_send_with_a_key(fast_server, alice, second, same_key, status, code):
    key = f"order-{uuid.uuid4()}"
    first = post(fast_server, alice, body_of("a", "b"), key)
    assert first.status_code == 200, first.text
    again = post(fast_server, alice, second, key if same_key else f"{key}-other")
    if code is not None:
        fast_server.assert_error(again, status, code)
        return
    assert again.status_code == 200, again.text
    if same_key:
        assert again.content == first.content  # byte for byte
    else:
        assert again.json()["messagelistId"] != first.json()["messagelistId"]


def test_the_same_key_of_another_account_is_its_own(fast_server, alice, bob):
    key = f"shared-{uuid.uuid4()}"
    mine = post(fast_server, alice, body_of("x"), key).json()
    theirs = post(fast_server, bob, body_of("x"), key).json()
    assert mine["messagelistId"] != theirs["messagelistId"]


@pytest.mark.parametrize(
    "key", ["", "a b", "x" * 256, "ключ".encode()], ids=["empty", "space", "256", "utf8"]
)
def test_a_malformed_key_is_400(fast_server, alice, key):
    headers = {**alice.headers, "Content-Type": "application/json"}
    response = fast_server.http.post(
        "/bat/messagelist", content=body_of("x"), headers={**headers, "Idempotency-Key": key}
    )
    fast_server.assert_error(response, 400, "INVALID_REQUEST")


@pytest.mark.parametrize("concurrent", [2, 16])
def test_concurrent_duplicates_create_one_list_and_get_one_answer(fast_server, alice, concurrent):
    """N clients send the same batch with one key at once: one list, N identical answers."""
    key = f"race-{uuid.uuid4()}"
    body = body_of(*(f"message {i}" for i in range(100)))
    before = fast_server.send(alice, [SMS])["messagelistId"]

    def send(_):
        with httpx.Client(base_url=fast_server.base_url, timeout=30) as http:
            return post(fast_server, alice, body, key, http)

    with ThreadPoolExecutor(concurrent) as pool:
        answers = list(pool.map(send, range(concurrent)))
    after = fast_server.send(alice, [SMS])["messagelistId"]

    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    list_id = answers[0].json()["messagelistId"]
    # Exactly one list came between the two probes (nothing else sends meanwhile) …
    assert before < list_id < after and after == before + 2
    # … and it holds the batch once.
    summary = fast_server.http.get(f"/bat/messagelist/{list_id}", headers=alice.headers).json()
    assert summary["total"] == 100


def test_concurrent_sends_with_one_key_and_two_bodies(fast_server, alice):
    key = f"race-{uuid.uuid4()}"
    bodies = [body_of("first"), body_of("second")] * 4

    def send(body):
        with httpx.Client(base_url=fast_server.base_url, timeout=30) as http:
            return body, post(fast_server, alice, body, key, http)

    with ThreadPoolExecutor(len(bodies)) as pool:
        outcomes = list(pool.map(send, bodies))
    won = [(b, r) for b, r in outcomes if r.status_code == 200]
    assert len(won) == 4 and len({b for b, _ in won}) == 1 and len({r.content for _, r in won}) == 1
    for body, response in outcomes:
        if body != won[0][0]:
            fast_server.assert_error(response, 422, "IDEMPOTENCY_KEY_REUSED")
