"""The HTTP connection: what a client may make the server hold, and for how long.

uvicorn's httptools protocol, with the limits it lacks (docs/security.md):

- a request head (request line and headers) of at most `max_header_bytes`, with at
  most `max_headers` headers and a target of at most `max_url_bytes`: 431 / 414;
- the head must arrive within `header_timeout` of its first byte (or of the
  connection, for its first request), the body within `body_timeout` of the head:
  a slow client is answered 408 (or, mid-body, cut off) and its connection closed;
- what the parser refuses is answered in the SPEC's error shape (400), not
  uvicorn's plain text, after the answers to the requests before it on the
  connection (pipelined ones included), and the connection is closed.

And one shortcut: a plain `GET /bat/message/{id}` whose key the app knows (`Direct`:
api.fastpath's `respond_now`) is answered right here, as its head arrives, without
uvicorn's request cycle or ASGI messages: at once on SQLite (or from the cache of
final answers), else when the app's read is done (on PostgreSQL, one query shared
by the lookups of the moment), and only if the request was all the connection had
sent (what the client sends meanwhile is held, unread, until the answer is out).

Its answer is written in one write once the event loop has handled everything it
read in this turn, together with the other connections' answers of the turn
(`_DueAnswers`): written one by one between reads, each answer woke the sleeping
client on its own, which cost more than the lookup. A connection holds at most one
answer due; anything else that happens on it first writes that answer (the next
request's head, a refusal, a shutdown), so answers keep their order. Anything else
about the request (a body, `Expect`, HTTP/1.0, `Connection: close`, an escaped or
odd path, a response still being written on the connection, a client not reading
its answers) sends it the ordinary way, through uvicorn and the app.

The body's size is limited by the routes before they read it (`max_body_bytes`).
Idle keep-alive connections are closed by uvicorn after `timeout_keep_alive`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from batgate.api.errors import error_body
from batgate.config import HttpSettings

log = logging.getLogger(__name__)

_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
}


RawHeaders = list[tuple[bytes, bytes]]
Response = tuple[int, RawHeaders, bytes]  # status, headers, body
# The whole response to a status lookup, or a future of it, or None (the ordinary way):
# (request headers, message id, whether the connection may wait for it) -> response.
Direct = Callable[[RawHeaders, str, bool], Response | asyncio.Future[Response] | None]
_STATUS_PREFIX = b"/bat/message/"
# Request headers that make a request more than a plain GET: it goes the ordinary way.
_NOT_PLAIN = frozenset((b"content-length", b"transfer-encoding", b"expect", b"upgrade"))


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the refusal is on the protocol."""


class _DueAnswers:
    """The direct answers of one event loop not written yet: written together once the
    loop has run the callbacks of what it read (one `call_soon` per turn)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: list[LimitedHttpProtocol] = []

    def add(self, protocol: LimitedHttpProtocol) -> None:
        self._due.append(protocol)
        if len(self._due) == 1:
            self._loop.call_soon(self._write_all)

    def _write_all(self) -> None:
        due, self._due = self._due, []
        for protocol in due:
            protocol.write_due_answer()


_DUE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _DueAnswers] = (
    weakref.WeakKeyDictionary()
)


def _due_answers(loop: asyncio.AbstractEventLoop) -> _DueAnswers:
    due = _DUE.get(loop)
    if due is None:
        due = _DUE[loop] = _DueAnswers(loop)
    return due


class LimitedHttpProtocol(HttpToolsProtocol):
    limits: HttpSettings = HttpSettings()
    direct: Direct | None = None  # set by protocol_class

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answered = False  # the request being parsed was answered directly
        self._answer_due: bytes | None = None  # a direct answer not written yet
        self._refusal_due: bytes | None = None  # a refusal waiting for earlier answers
        self._awaited: asyncio.Future[Response] | None = None  # a direct answer being made
        self._held: list[bytes] = []  # what the client sent meanwhile, unread
        self._close_after_answer = False  # the server is shutting down
        self._alone = False  # the data being parsed is one whole request head
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._url_bytes = 0
        self._refusal: tuple[int, str, str] | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- the connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._loop_answers = _due_answers(self.loop)
        self._arm(self.limits.header_timeout, "the request head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._answer_due = None
        self._held.clear()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._awaited is not None:
            self._close_after_answer = True  # uvicorn waits for the connection to close
            return
        self.write_due_answer()
        super().shutdown()

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # answered already; the connection is closing
        if self._awaited is not None:
            self._held.append(data)  # parsed once the answer being made is written
            self.flow.pause_reading()
            return
        self._alone = False
        if self._in_head:
            # Only the head's bytes count (httptools keeps a header line whole in memory
            # until it ends, so this is checked before it parses): up to the blank line.
            end = data.find(b"\r\n\r\n")
            self._alone = self._head_bytes == 0 and end == len(data) - 4
            self._head_bytes += len(data) if end < 0 else end + 4
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(
                    431,
                    "REQUEST_HEADER_FIELDS_TOO_LARGE",
                    f"the request head is over {self.limits.max_header_bytes} bytes",
                )
                return
        super().data_received(data)

    # -- the parser's callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.write_due_answer()  # the previous request's, before this one goes on
        super().on_message_begin()
        # A request has begun: the connection is not idle. (uvicorn stops the keep-alive
        # timer only as data arrives; a direct answer arms it in the middle of the data,
        # and a request that follows in the same read must not run with it counting.)
        self._unset_keepalive_if_required()
        self._answered = False
        self._in_head = True
        self._header_count = self._url_bytes = 0
        if self._timer is None:  # the first byte of a request after the connection's first
            self._arm(self.limits.header_timeout, "the request head")

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.max_url_bytes:
            self._stop(
                414, "URI_TOO_LONG", f"the request target is over {self.limits.max_url_bytes} bytes"
            )
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._stop(
                431,
                "REQUEST_HEADER_FIELDS_TOO_LARGE",
                f"more than {self.limits.max_headers} headers",
            )
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        if self._answer_directly():
            return
        self._arm(self.limits.body_timeout, "the request body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True  # what comes next is the next request's head
        self._head_bytes = 0
        if not self._answered:
            super().on_message_complete()

    # -- the shortcut ----------------------------------------------------------------------

    def _answer_directly(self) -> bool:
        """Answer a plain status lookup here, if the app can; False: it cannot."""
        direct = self.direct
        if (
            direct is None
            or self.pipeline
            or (self.cycle is not None and not self.cycle.response_complete)
            or self.flow.write_paused  # a client not reading: uvicorn's way waits for it
            or self.root_path
            or self.parser.get_method() != b"GET"
            or self.parser.get_http_version() != "1.1"
            or not self.parser.should_keep_alive()
            or not self.url.startswith(_STATUS_PREFIX)
        ):
            return False
        message_id = self.url[len(_STATUS_PREFIX) :]
        # Message ids are ASCII letters and digits (bytes.isalnum knows no others);
        # anything else (an escape, a query, a slash) is left to the app, which
        # answers it as it answers any path, and so is the bulk route's path.
        if not message_id.isalnum() or message_id == b"status":
            return False
        if any(name in _NOT_PLAIN for name, _ in self.headers):
            return False
        # Nothing else may be parsed while an answer is being made: only a request that
        # came alone may wait for one.
        response = direct(self.headers, message_id.decode("ascii"), self._alone)
        if response is None:
            return False
        self._answered = True
        if isinstance(response, asyncio.Future):
            self._awaited = response
            response.add_done_callback(self._answer_made)
        else:
            self._hold_answer(response)
        return True

    def _answer_made(self, made: asyncio.Future[Response]) -> None:
        self._awaited = None
        if self.transport.is_closing():
            return
        if made.cancelled() or made.exception() is not None:
            if not made.cancelled():  # answer_later answers its own failures: a bug
                log.error("a status lookup failed", exc_info=made.exception())
            self.transport.close()
            return
        self._hold_answer(made.result())

    def _hold_answer(self, response: Response) -> None:
        status, headers, body = response
        head = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        head.append(body)
        self._answer_due = b"".join(head)
        self._loop_answers.add(self)

    def write_due_answer(self) -> None:
        """Write the direct answer this connection holds, if any; the response is then
        complete (uvicorn starts a pipelined request or the keep-alive timer), and what
        the client sent while it was being made is parsed."""
        answer = self._answer_due
        if answer is None:
            return
        self._answer_due = None
        if self.transport.is_closing():
            return
        self.transport.write(answer)
        self.on_response_complete()
        if self._close_after_answer:
            self.transport.close()
        elif self._held:
            held = b"".join(self._held)
            self._held.clear()
            self.data_received(held)

    # -- answers -------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """What the parser refused (or a limit stopped) in the SPEC's error shape."""
        if self._refusal is not None:
            status, code, message = self._refusal
        else:
            status, code, message = 400, "INVALID_REQUEST", "the request is not valid HTTP/1.1"
        self._answer(status, code, message)

    def _stop(self, status: int, code: str, message: str) -> None:
        self._refusal = (status, code, message)
        raise _Refused(message)  # feed_data raises HttpParserCallbackError: send_400_response

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._refusal = (status, code, message)
        self._answer(status, code, message)

    def _answer(self, status: int, code: str, message: str) -> None:
        self._disarm()
        self.write_due_answer()
        if self.transport.is_closing():
            return
        body = error_body(code, message)
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Error"))]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        log.info("refused a request from %s: %d %s", _peer(self.client), status, message)
        if self.pipeline or (self.cycle is not None and not self.cycle.response_complete):
            # Requests before this one are still being answered: the refusal follows them.
            self._refusal_due = b"".join(head) + body
            return
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def on_response_complete(self) -> None:
        refusal = self._refusal_due
        if refusal is None or self.pipeline:
            super().on_response_complete()
            return
        self._refusal_due = None
        self.server_state.total_requests += 1
        if not self.transport.is_closing():
            self.transport.write(refusal)
            self.transport.close()

    # -- slow clients ----------------------------------------------------------------------

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._too_slow, what, seconds)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self, what: str, seconds: float) -> None:
        self._timer = None
        message = f"{what} did not arrive within {seconds:g} s"
        if self._in_head and (self.cycle is None or self.cycle.response_complete):
            if self._head_bytes or self.cycle is None:
                self._refuse(408, "REQUEST_TIMEOUT", message)
            return
        # Mid-body: the route is reading it; it sees the client disconnect.
        log.info("dropped a slow client %s: %s", _peer(self.client), message)
        self._refusal = (408, "REQUEST_TIMEOUT", message)
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "-"


def protocol_class(limits: HttpSettings, direct: Direct | None = None) -> type[LimitedHttpProtocol]:
    """The protocol class for uvicorn's `http=` option, with these limits, answering
    status lookups itself with `direct` when given."""
    namespace = {"limits": limits, "direct": staticmethod(direct) if direct else None}
    return type("BatgateHttpProtocol", (LimitedHttpProtocol,), namespace)
