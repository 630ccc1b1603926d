"""SPEC §6 request-level errors: malformed bodies, unknown paths and ids, methods, sizes."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

GOOD = {"from": "batgate", "to": "+380501234567", "type": "sms", "text": "Hello"}
MAX_BODY = 16 * 1024 * 1024  # the default max_body_bytes

MALFORMED = [
    pytest.param(b"hello", id="not-json"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b'{"messages": [', id="truncated-json"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(b'{"messages": []}', id="empty-messages"),
    pytest.param(b"[]", id="empty-bare-array"),
    pytest.param(b'{"messages": "x"}', id="messages-string"),
    pytest.param(b'{"messages": null}', id="messages-null"),
    pytest.param(b'{"messages": {"to": "+380501234567"}}', id="messages-object"),
    pytest.param(b'{"message": [{}]}', id="misspelt-key"),
    pytest.param(b"null", id="null"),
    pytest.param(b'"messages"', id="string"),
    pytest.param(b"42", id="number"),
    pytest.param(b'["x"]', id="element-string"),
    pytest.param(b"[1]", id="element-number"),
    pytest.param(b"[null]", id="element-null"),
    pytest.param(b"[[]]", id="element-array"),
    pytest.param(b'{"messages": [true]}', id="element-boolean"),
    pytest.param(json.dumps({"messages": [GOOD, "x"]}).encode(), id="good-then-string"),
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_body_is_400(fast_server, alice, body):
    response = fast_server.http.post(
        "/bat/messagelist",
        content=body,
        headers={**alice.headers, "Content-Type": "application/json"},
    )

    fast_server.assert_error(response, 400, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/", id="root"),
        pytest.param("GET", "/nope", id="unknown"),
        pytest.param("GET", "/bat", id="bat"),
        pytest.param("GET", "/bat/messages", id="plural"),
        pytest.param("POST", "/bat/messagelists", id="post-unknown"),
        pytest.param("GET", "/bat/message/", id="empty-id"),
        pytest.param("GET", "/bat/message/abc/def", id="nested-id"),
    ],
)
def test_unknown_path_is_404(fast_server, alice, method, path):
    response = fast_server.http.request(method, path, headers=alice.headers)

    fast_server.assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "message_id",
    ["abc123def456", "0" * 22, "x" * 65, "x" * 5000, "%20", "..", "héllo", "'; drop table"],
)
def test_unknown_message_id_is_404(fast_server, alice, message_id):
    response = fast_server.http.get(f"/bat/message/{message_id}", headers=alice.headers)

    fast_server.assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/bat/messagelist", id="get-messagelist"),
        pytest.param("PUT", "/bat/messagelist", id="put-messagelist"),
        pytest.param("DELETE", "/bat/messagelist", id="delete-messagelist"),
        pytest.param("POST", "/bat/message/abc123", id="post-message"),
        pytest.param("PATCH", "/bat/message/abc123", id="patch-message"),
        pytest.param("POST", "/healthz", id="post-healthz"),
    ],
)
def test_wrong_method_is_405(fast_server, alice, method, path):
    response = fast_server.http.request(method, path, headers=alice.headers)

    fast_server.assert_error(response, 405, "METHOD_NOT_ALLOWED")


def test_another_accounts_message_is_404_like_an_unknown_id(fast_server, alice, bob):
    message_id = fast_server.send_one(alice, GOOD)["messageId"]
    unknown_id = message_id[:-4] + ("0000" if not message_id.endswith("0000") else "1111")

    def as_bob(mid):
        response = fast_server.http.get(f"/bat/message/{mid}", headers=bob.headers)
        body = fast_server.assert_error(response, 404, "NOT_FOUND")
        # The message may name the id; with the id blanked it must not differ.
        body["error"]["message"] = body["error"]["message"].replace(mid, "ID")
        return response, body

    # While the message is in flight (read from the store) ...
    theirs, theirs_body = as_bob(message_id)
    unknown, unknown_body = as_bob(unknown_id)
    assert theirs_body == unknown_body
    assert set(theirs.headers) - {"date"} == set(unknown.headers) - {"date"}

    # ... and once final (then answered from the cache of final statuses).
    assert fast_server.wait_final(alice, message_id).final["deliverystatus"] == "delivered"
    theirs, theirs_body = as_bob(message_id)
    assert theirs_body == unknown_body
    assert set(theirs.headers) - {"date"} == set(unknown.headers) - {"date"}
    assert fast_server.status(alice, message_id)["deliverystatus"] == "delivered"


def test_1000_messages_is_accepted(fast_server):
    account = fast_server.create_account("bulk")
    batch = [{**GOOD, "customerMessageId": str(n)} for n in range(1000)]

    answer = fast_server.send(account, batch)

    assert len(answer["messages"]) == 1000
    assert [e["customerMessageId"] for e in answer["messages"]] == [str(n) for n in range(1000)]
    assert all(e["status"] == "accepted" for e in answer["messages"])


@pytest.mark.parametrize("bare", [False, True], ids=["object", "bare-array"])
def test_1001_messages_is_413(fast_server, alice, bare):
    batch = [GOOD] * 1001
    body = batch if bare else {"messages": batch}

    response = fast_server.http.post("/bat/messagelist", json=body, headers=alice.headers)

    fast_server.assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def _padded(size: int) -> bytes:
    """A valid one-message request of exactly `size` bytes (padded with whitespace)."""
    core = json.dumps({"messages": [GOOD]}).encode()
    return core[:-1] + b" " * (size - len(core)) + b"}"


def test_body_at_the_limit_is_accepted(fast_server, alice):
    response = fast_server.http.post(
        "/bat/messagelist", content=_padded(MAX_BODY), headers=alice.headers
    )

    assert response.status_code == 200, response.text[:200]
    assert response.json()["messages"][0]["status"] == "accepted"


def test_body_over_the_limit_is_413(fast_server, alice):
    response = fast_server.http.post(
        "/bat/messagelist", content=_padded(MAX_BODY + 1), headers=alice.headers
    )

    fast_server.assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_chunked_body_over_the_limit_is_413(fast_server, alice):
    """No Content-Length: the server has to count while reading."""
    body = _padded(MAX_BODY + 1)

    def chunks():
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    response = fast_server.http.post("/bat/messagelist", content=chunks(), headers=alice.headers)

    fast_server.assert_error(response, 413, "PAYLOAD_TOO_LARGE")
