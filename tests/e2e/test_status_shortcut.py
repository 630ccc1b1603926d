"""`GET /bat/message/{id}` answered as its head arrives (api.server's shortcut, on SQLite
with the key cached) or the ordinary way (through uvicorn and the app): a client must not
be able to tell which, and answers on one connection must keep their order.

Raw sockets on loopback, so that each request goes exactly as written: some plain (the
shortcut), some with something that sends them the ordinary way.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable

import pytest

pytestmark = pytest.mark.e2e

SMS = {"from": "batgate", "to": "+380501234567", "type": "sms", "text": "Hello"}
UNKNOWN = "9" * 20


@pytest.fixture(scope="module")
def account(fast_server):
    return fast_server.create_account("shortcut")


@pytest.fixture(scope="module")
def message_id(fast_server, account) -> str:
    """A delivered message (its answer no longer changes); the account's key is in the
    server's cache from here on."""
    sent = fast_server.send_one(account, SMS)
    fast_server.wait_final(account, sent["messageId"])
    return str(sent["messageId"])


class Connection:
    """One keep-alive connection, its answers read one at a time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buffer = b""

    def send(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
        }
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"connection closed; had {self.buffer[:200]!r}"
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def get(path: str, key: str, *extra: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: t", f"X-Authorization-Key: {key}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def escaped(message_id: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in message_id)


# (id, the request as asked for a path and key, whether the server then closes)
WAYS: list[tuple[str, Callable[[str, str], bytes], bool]] = [
    ("plain", lambda p, k: get(p, k), False),
    ("with an empty body", lambda p, k: get(p, k, "Content-Length: 0"), False),
    ("Connection: close", lambda p, k: get(p, k, "Connection: close"), True),
    ("HTTP/1.0", lambda p, k: get(p, k, version="1.0"), True),
    ("a query string", lambda p, k: get(p + "?x=1", k), False),
]


def one_answer(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    conn = Connection(port)
    try:
        conn.send(raw)
        return conn.answer()
    finally:
        conn.close()


@pytest.mark.parametrize("make", [w[1] for w in WAYS], ids=[w[0] for w in WAYS])
@pytest.mark.parametrize("which", ["known", "unknown", "escaped"])
def test_every_way_answers_alike(fast_server, account, message_id, make, which):
    """Each way of asking (plain: the shortcut on SQLite) against a plain request."""
    plain_id = UNKNOWN if which == "unknown" else message_id
    asked_id = escaped(message_id) if which == "escaped" else plain_id
    status, headers, body = one_answer(
        fast_server.port, get(f"/bat/message/{plain_id}", account.api_key)
    )
    status2, headers2, body2 = one_answer(
        fast_server.port, make(f"/bat/message/{asked_id}", account.api_key)
    )
    assert (status2, body2) == (status, body)
    assert status == (404 if which == "unknown" else 200)
    for h in (headers, headers2):
        assert h["content-type"] == "application/json"
        assert h["x-request-id"]
    ignored = {"connection", "date", "x-request-id"}
    assert set(headers2) - ignored == set(headers) - ignored
    if status == 200:
        assert json.loads(body)["messageId"] == message_id


@pytest.mark.parametrize(("make", "closes"), [w[1:] for w in WAYS], ids=[w[0] for w in WAYS])
def test_the_connection_stays_open_only_when_asked(fast_server, account, message_id, make, closes):
    conn = Connection(fast_server.port)
    try:
        conn.send(make(f"/bat/message/{message_id}", account.api_key))
        assert conn.answer()[0] == 200
        if closes:
            assert conn.closed()
        else:
            conn.send(get(f"/bat/message/{message_id}", account.api_key))
            assert conn.answer()[0] == 200
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(fast_server, account, message_id):
    """One write, seven requests, some answered by the shortcut and some the ordinary way
    (one of which waits on the database): the answers come back in the order asked."""
    key = account.api_key
    fresh = fast_server.send_one(account, SMS)["messageId"]  # not final: read from the store
    body = json.dumps({"messageIds": [message_id]}).encode()
    bulk = (
        f"POST /bat/message/status HTTP/1.1\r\nHost: t\r\nX-Authorization-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    requests = [
        (get("/healthz", key), 200, None),
        (get(f"/bat/message/{message_id}", key, "X-Request-Id: first"), 200, "first"),
        (bulk, 200, None),
        (get(f"/bat/message/{UNKNOWN}", key, "X-Request-Id: second"), 404, "second"),
        (get(f"/bat/message/{escaped(message_id)}", key, "X-Request-Id: third"), 200, "third"),
        (get(f"/bat/message/{fresh}", key, "X-Request-Id: fourth"), 200, "fourth"),
        (get(f"/bat/message/{message_id}", key, "X-Request-Id: fifth"), 200, "fifth"),
    ]
    conn = Connection(fast_server.port)
    try:
        conn.send(b"".join(raw for raw, _, _ in requests))
        answers = []
        for n, (_, status, request_id) in enumerate(requests):
            got, headers, answer = conn.answer()
            assert got == status, (n, answer)
            if request_id is not None:
                assert headers["x-request-id"] == request_id
            answers.append(answer)
        assert json.loads(answers[4])["messageId"] == message_id
        assert json.loads(answers[5])["messageId"] == fresh
    finally:
        conn.close()


def test_lookups_answered_at_once_are_counted_and_keep_the_request_id(
    fast_server, account, message_id
):
    def counted() -> float:
        text = fast_server.http.get("/metrics").text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("batgate_http_request_duration_seconds_count")
            and 'route="/bat/message/{messageId}"' in line
            and 'status="200"' in line
        )

    before = counted()
    conn = Connection(fast_server.port)
    try:
        for n in range(5):
            conn.send(get(f"/bat/message/{message_id}", account.api_key, f"X-Request-Id: r{n}"))
            status, headers, _ = conn.answer()
            assert (status, headers["x-request-id"]) == (200, f"r{n}")
    finally:
        conn.close()
    assert counted() - before == 5


def test_a_client_that_does_not_read_its_answers_is_made_to_wait_and_gets_them_in_order(
    fast_server, account, message_id
):
    """20,000 lookups written without reading an answer (6 MB of answers: more than the
    socket buffers hold, so the server's writes pause and it goes the ordinary way,
    which stops reading); read later, every answer is there, in order."""
    count = 20_000
    requests = [
        get(f"/bat/message/{message_id}", account.api_key, f"X-Request-Id: n{n}")
        for n in range(count)
    ]
    conn = Connection(fast_server.port)
    sender = threading.Thread(target=conn.send, args=(b"".join(requests),), daemon=True)
    try:
        sender.start()
        sender.join(1.0)
        for n in range(count):
            status, headers, _ = conn.answer()
            assert (status, headers["x-request-id"]) == (200, f"n{n}")
        sender.join(20)
        assert not sender.is_alive()
    finally:
        conn.close()


@pytest.mark.parametrize("odd", ["%00", "%C3%A9", "a%20b", "x%0Ay", "%FF%FE"])
def test_ids_that_cannot_be_ours_are_unknown_and_harm_no_other_lookup(
    fast_server, account, message_id, odd
):
    """A NUL or a stray byte in an id would fail a database query (on PostgreSQL the
    one shared by every lookup of the same moment): it is answered 404 unread."""
    conn = Connection(fast_server.port)
    try:
        conn.send(
            get(f"/bat/message/{odd}", account.api_key)
            + get(f"/bat/message/{message_id}", account.api_key)
        )
        status, _, body = conn.answer()
        assert status == 404, body
        assert json.loads(body)["error"]["code"] == "NOT_FOUND"
        status, _, body = conn.answer()
        assert (status, json.loads(body)["messageId"]) == (200, message_id)
    finally:
        conn.close()


def test_a_request_after_a_direct_answer_is_not_cut_by_the_keep_alive_timer(
    start_server, tmp_path, backend, databases
):
    """A lookup answered at once arms the connection's keep-alive timer (1 s here);
    a send that follows in the same read, its body 2 s late, still gets its answer."""
    settings = {"BATGATE_HTTP__KEEP_ALIVE": "1", "BATGATE_HTTP__BODY_TIMEOUT": "10"}
    server = start_server(tmp_path, settings, databases.url(backend, tmp_path))
    account = server.create_account("keepalive")
    sent = server.send_one(account, SMS)
    server.status(account, sent["messageId"])  # the key is cached from here on
    body = json.dumps({"messages": [SMS]}).encode()
    send_head = (
        f"POST /bat/messagelist HTTP/1.1\r\nHost: t\r\nX-Authorization-Key: {account.api_key}"
        f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    conn = Connection(server.port)
    try:
        conn.send(get(f"/bat/message/{sent['messageId']}", account.api_key) + send_head)
        assert conn.answer()[0] == 200
        time.sleep(2.0)  # past the keep-alive time: the send is under way, not idle
        conn.send(body)
        status, _, answer = conn.answer()
        assert status == 200, answer
        assert json.loads(answer)["messages"][0]["status"] == "accepted"
    finally:
        conn.close()


# (id, what follows a direct lookup in the same write, the status it gets)
FOLLOWERS: list[tuple[str, Callable[[str], bytes], int]] = [
    ("too many headers", lambda k: get("/healthz", k, *[f"X-N{n}: v" for n in range(101)]), 431),
    ("a target too long", lambda k: get("/healthz?" + "q" * 9000, k), 414),
    ("not HTTP", lambda k: b"NOT HTTP AT ALL\r\n\r\n", 400),
]


@pytest.mark.parametrize(
    ("follow", "status"), [f[1:] for f in FOLLOWERS], ids=[f[0] for f in FOLLOWERS]
)
def test_an_answer_held_for_the_turn_is_written_before_a_refusal(
    fast_server, account, message_id, follow, status
):
    """The lookup's answer comes first, then the refusal, then the close: whether the
    lookup was answered directly (its answer held to the end of the event loop's turn)
    or the ordinary way (its answer still being made when the refusal was decided)."""
    conn = Connection(fast_server.port)
    try:
        conn.send(get(f"/bat/message/{message_id}", account.api_key) + follow(account.api_key))
        got, _, body = conn.answer()
        assert (got, json.loads(body)["messageId"]) == (200, message_id)
        got, _, body = conn.answer()
        assert got == status, body
        assert conn.closed()
    finally:
        conn.close()


def test_lookups_on_many_connections_in_one_turn_each_get_their_own_answer(
    fast_server, account, message_id
):
    """Sixty-four connections, their lookups sent before any answer is read (the server
    reads several in one turn and writes their answers together): every connection
    gets exactly its own answer, with its request id, and nothing more."""
    conns = [Connection(fast_server.port) for _ in range(64)]
    try:
        for round_ in range(3):
            for n, conn in enumerate(conns):
                conn.send(
                    get(
                        f"/bat/message/{message_id}",
                        account.api_key,
                        f"X-Request-Id: c{n}-{round_}",
                    )
                )
            for n, conn in enumerate(conns):
                status, headers, _ = conn.answer()
                assert (status, headers["x-request-id"]) == (200, f"c{n}-{round_}")
                assert conn.buffer == b""
    finally:
        for conn in conns:
            conn.close()
