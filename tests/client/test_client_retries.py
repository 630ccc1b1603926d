"""Retries, errors, concurrency and the cache, against a real HTTP server that follows a script.

The scripted server answers 429 with `Retry-After`, 503, dropped connections, slow
answers, …; both clients run every case. The delays the client decides are read
from its log (`batgate.client`), never measured.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from client_support import (
    FAST_RETRIES,
    Answer,
    MakeClient,
    ScriptedServer,
    Seen,
    error_answer,
    free_port,
    status_doc,
)

from batgate.client import (
    AuthenticationError,
    BatgateError,
    IdempotencyKeyReusedError,
    NetworkError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    StatusCache,
    ValidationError,
    sms,
)

M1 = "/bat/message/m1"
SEND = "/bat/messagelist"
SENT = {"messagelistId": 7, "messages": [{"messageId": "a1", "status": "accepted", "parts": 1}]}


def retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits the client logged before its retries, in order."""
    return [float(r.args[-1]) for r in caplog.records if "retry" in r.getMessage()]


def test_429_with_retry_after_then_503_then_200(
    make_scripted_client: MakeClient, scripted: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    scripted.on(
        M1,
        error_answer(429, "RATE_LIMITED", **{"Retry-After": "1"}),
        error_answer(503, "INTERNAL_ERROR"),
        Answer(200, status_doc("m1")),
    )
    client = make_scripted_client(retries=FAST_RETRIES)
    with caplog.at_level(logging.INFO, logger="batgate.client"):
        assert client.status("m1").delivered
    assert len(scripted.requests(M1)) == 3
    first, second = retry_waits(caplog)
    assert first >= 1.0  # Retry-After honoured
    assert second < 1.0  # no Retry-After: the (fast) backoff


def test_a_retry_after_beyond_the_maximum_is_not_waited_for(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    scripted.on(M1, error_answer(429, "RATE_LIMITED", **{"Retry-After": "120"}))
    client = make_scripted_client(retries=FAST_RETRIES)
    with pytest.raises(RateLimitedError) as caught:
        client.status("m1")
    assert (caught.value.retry_after, caught.value.code) == (120.0, "RATE_LIMITED")
    assert len(scripted.requests(M1)) == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_answers_are_retried_until_retries_run_out(
    make_scripted_client: MakeClient, scripted: ScriptedServer, status: int
) -> None:
    scripted.on(M1, error_answer(status, "X", **{"Retry-After": "0"}))
    client = make_scripted_client(retries=FAST_RETRIES)
    expected = RateLimitedError if status == 429 else ServerError
    with pytest.raises(expected) as caught:
        client.status("m1")
    assert caught.value.status_code == status
    assert len(scripted.requests(M1)) == 1 + len(FAST_RETRIES.backoff.delays)


def test_a_dropped_connection_is_retried(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    scripted.on(M1, Answer(action="drop"), Answer(200, status_doc("m1", "processing")))
    client = make_scripted_client(retries=FAST_RETRIES)
    assert client.status("m1").status == "processing"
    assert len(scripted.requests(M1)) == 2


def test_a_timed_out_request_is_retried_then_raised(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    scripted.on(M1, Answer(200, status_doc("m1"), delay=0.5), Answer(200, status_doc("m1")))
    client = make_scripted_client(retries=FAST_RETRIES, timeout=0.1)
    assert client.status("m1").delivered
    scripted.on(M1, Answer(200, status_doc("m1"), delay=0.5))
    with pytest.raises(RequestTimeoutError) as caught:
        client.status("m1")
    assert isinstance(caught.value, TimeoutError)


def test_an_unreachable_server_is_a_network_error(make_scripted_client: MakeClient) -> None:
    client = make_scripted_client(f"http://127.0.0.1:{free_port()}", retries=FAST_RETRIES)
    with pytest.raises(NetworkError):
        client.status("m1")


def test_with_retries_off_nothing_is_retried(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    scripted.on(M1, error_answer(503, "INTERNAL_ERROR"), Answer(200, status_doc("m1")))
    with pytest.raises(ServerError):
        make_scripted_client(retries=False).status("m1")
    assert len(scripted.requests(M1)) == 1


def test_a_send_without_idempotency_key_is_never_retried(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    scripted.on(SEND, error_answer(503, "INTERNAL_ERROR"), Answer(200, SENT))
    client = make_scripted_client(retries=FAST_RETRIES, sender="Shop")
    with pytest.raises(ServerError):
        client.send([sms("+380501234567", "hi")])
    scripted.on(SEND, Answer(action="drop"), Answer(200, SENT))
    with pytest.raises(NetworkError):
        client.send([sms("+380501234567", "hi")])
    assert len(scripted.requests(SEND)) == 2


def test_a_send_with_idempotency_key_is_retried_with_the_same_key_and_body(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    scripted.on(
        SEND,
        error_answer(503, "INTERNAL_ERROR"),
        Answer(action="drop"),
        error_answer(429, "RATE_LIMITED", **{"Retry-After": "0"}),
        Answer(200, SENT),
    )
    client = make_scripted_client(retries=FAST_RETRIES, sender="Shop")
    result = client.send([sms("+380501234567", "hi")], idempotency_key="order-1001")
    assert (result.messagelist_id, result.message_ids) == (7, ["a1"])
    seen = scripted.requests(SEND)
    assert len(seen) == 4
    assert {s.headers["Idempotency-Key"] for s in seen} == {"order-1001"}
    assert len({s.body for s in seen}) == 1
    assert json.loads(seen[0].body) == {
        "messages": [{"type": "sms", "from": "Shop", "to": "+380501234567", "text": "hi"}]
    }


def test_an_invalid_idempotency_key_is_refused_before_sending(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    client = make_scripted_client()
    for key in ("", "has space", "x" * 256, "naïve"):
        with pytest.raises(ValueError):
            client.send([sms("+380501234567", "hi")], idempotency_key=key)
    assert scripted.requests() == []


ERRORS: list[tuple[int, str, type[BatgateError]]] = [
    (400, "INVALID_REQUEST", ValidationError),
    (401, "UNAUTHORIZED", AuthenticationError),
    (404, "NOT_FOUND", NotFoundError),
    (422, "IDEMPOTENCY_KEY_REUSED", IdempotencyKeyReusedError),
    (409, "IDEMPOTENCY_KEY_REUSED", IdempotencyKeyReusedError),  # earlier batgate builds
    (422, "INVALID_REQUEST", ValidationError),
    (413, "PAYLOAD_TOO_LARGE", ValidationError),
]


@pytest.mark.parametrize(
    ("status", "code", "error"), ERRORS, ids=[f"{s}-{c}" for s, c, _ in ERRORS]
)
def test_client_errors_map_to_the_tree_and_are_not_retried(
    make_scripted_client: MakeClient,
    scripted: ScriptedServer,
    status: int,
    code: str,
    error: type[BatgateError],
) -> None:
    scripted.on(SEND, error_answer(status, code))
    client = make_scripted_client(retries=FAST_RETRIES, sender="Shop")
    with pytest.raises(error) as caught:
        client.send([sms("+380501234567", "hi")], idempotency_key="k-1")
    assert type(caught.value) is error
    assert (caught.value.status_code, caught.value.code) == (status, code)
    assert caught.value.message == "scripted"
    assert len(scripted.requests(SEND)) == 1


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, raw=b"<html>not json</html>"),
        Answer(200, {"deliverystatus": "lost"}),
        Answer(200, {"deliverystatus": "delivered", "cost": "free"}),
        Answer(200, ["not", "an", "object"]),
    ],
    ids=["not-json", "unknown-status", "mistyped-field", "not-an-object"],
)
def test_an_answer_off_the_contract_is_a_protocol_error(
    make_scripted_client: MakeClient, scripted: ScriptedServer, answer: Answer
) -> None:
    scripted.on(M1, answer)
    with pytest.raises(ProtocolError):
        make_scripted_client().status("m1")


def test_the_seeds_minimal_status_documents_parse(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    scripted.on(M1, Answer(200, {"deliverystatus": "scheduled", "partscount": 1}))
    status = make_scripted_client().status("m1")
    assert (status.message_id, status.status, status.cost, status.messagelist_id) == (
        "m1",
        "scheduled",
        None,
        None,
    )


def test_a_report_the_endpoint_does_not_have_is_explained(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    scripted.on("/bat/messagelist/5", Answer(405, {"detail": "Method Not Allowed"}))
    with pytest.raises(NotFoundError) as caught:
        make_scripted_client().report(5)
    assert "batgate extension" in caught.value.message


# -- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "header", "value"),
    [
        ({"api_key": "key-1"}, "X-Authorization-Key", "key-1"),
        ({"api_key": "key-1", "key_as_password": True}, "Authorization", "Basic @:key-1"),
        ({"username": "alice", "password": "pw:1"}, "Authorization", "Basic alice:pw:1"),
    ],
    ids=["key-header", "key-as-password", "login"],
)
def test_each_way_to_authenticate_sends_its_header(
    make_scripted_client: MakeClient,
    scripted: ScriptedServer,
    options: dict[str, Any],
    header: str,
    value: str,
) -> None:
    scripted.on(M1, Answer(200, status_doc("m1")))
    make_scripted_client(**options).status("m1")
    (seen,) = scripted.requests(M1)
    sent = seen.headers[header]
    if value.startswith("Basic "):
        sent = "Basic " + base64.b64decode(sent.removeprefix("Basic ")).decode()
    assert sent == value
    assert seen.headers["User-Agent"].startswith("batgate-client/")


def test_credentials_are_required() -> None:
    from batgate.client import AsyncClient, Client

    for cls in (Client, AsyncClient):
        for options in (
            {},
            {"username": "alice"},
            {"api_key": "k", "username": "u", "password": "p"},
        ):
            with pytest.raises(ValueError):
                cls("http://127.0.0.1:1", **options)


# -- many statuses ---------------------------------------------------------------------------


def _echo_status(seen: Seen) -> Answer:
    if seen.method == "POST":  # a server without POST /bat/message/status: one GET per id
        return error_answer(405, "METHOD_NOT_ALLOWED")
    message_id = seen.path.rsplit("/", 1)[-1]
    if message_id.startswith("missing"):
        return error_answer(404, "NOT_FOUND")
    return Answer(200, status_doc(message_id), delay=0.03)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_statuses_never_run_more_requests_at_once_than_allowed(
    make_scripted_client: MakeClient, scripted: ScriptedServer, concurrency: int
) -> None:
    scripted.default = _echo_status
    ids = [f"m{i}" for i in range(10)] + ["missing-1"]
    results = make_scripted_client().statuses(ids, concurrency=concurrency)
    assert [r.message_id for r in results] == ids
    assert all(r.ok and r.status.message_id == r.message_id for r in results[:-1])
    assert isinstance(results[-1].error, NotFoundError)
    assert 1 <= scripted.max_inflight <= concurrency
    if concurrency > 1:
        assert scripted.max_inflight > 1  # it did run requests side by side


def test_statuses_raise_an_authentication_error(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    scripted.default = lambda seen: error_answer(401, "UNAUTHORIZED")
    with pytest.raises(AuthenticationError):
        make_scripted_client().statuses(["a", "b", "c"])


# -- the cache -------------------------------------------------------------------------------


def test_the_cache_keeps_final_statuses_and_waits_look_past_non_final_ones(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    scripted.on(
        M1,
        Answer(200, status_doc("m1", "processing")),
        Answer(200, status_doc("m1", "processing")),
        Answer(200, status_doc("m1", "delivered")),
    )
    client = make_scripted_client(cache=StatusCache(ttl=60))
    assert client.status("m1").status == "processing"
    assert client.status("m1").status == "processing"  # from the cache, within its ttl
    assert len(scripted.requests(M1)) == 1
    assert client.wait_for_delivery("m1", timeout=10).delivered  # never trusts a cached non-final
    assert len(scripted.requests(M1)) == 3
    assert client.status("m1").delivered
    assert client.statuses(["m1", "m1"])[1].status.delivered
    assert len(scripted.requests(M1)) == 3  # final: never asked again


def test_without_a_cache_every_call_asks(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    scripted.on(M1, Answer(200, status_doc("m1")))
    client = make_scripted_client()
    client.status("m1")
    client.status("m1")
    assert len(scripted.requests(M1)) == 2
