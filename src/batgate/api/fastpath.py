"""A thin ASGI layer in front of FastAPI for the hottest route, the status lookup.

FastAPI's request and response machinery costs more than the lookup itself;
this answers `GET /bat/message/{id}` straight from the ASGI scope with the same
services the FastAPI route uses (which stays, for the OpenAPI document and for
anything this layer passes on). Everything else goes to FastAPI untouched.
`respond_now` is the same answer for api.server's shortcut, which calls it as a
request's head arrives (key cached) and writes what it returns.

It also does, for its route, what api/telemetry.py does for FastAPI's: the
request id (taken from `X-Request-Id` or made, echoed in the response, on every
log record), the duration histogram and the access log line (the histogram's
child is bound once, never a `.labels()` per request); see docs/operations.md.
"""

from __future__ import annotations

import asyncio
import logging
import time

from batgate.api.asgi import ASGIApp, RawHeaders, Receive, Scope, Send, json_headers, wanted
from batgate.api.direct_send import PATH as SEND_PATH
from batgate.api.direct_send import DirectSend
from batgate.api.gate import Gate, client_address
from batgate.api.status import StatusService, answer_later, answer_now
from batgate.domain.records import Account
from batgate.observability.logs import ACCESS, log_access
from batgate.observability.metrics import RouteTimer
from batgate.observability.requests import (
    HEADER,
    HEADER_BYTES,
    RequestInfo,
    current,
    request_id_from,
)

log = logging.getLogger(__name__)

Response = tuple[int, RawHeaders, bytes]  # status, headers, body

_PREFIX = "/bat/message/"
_BULK = "/bat/message/status"
ROUTE = "/bat/message/{messageId}"  # the FastAPI route this layer answers for
# The only headers read here: the credentials and the request id.
_READ = {
    b"authorization": "authorization",
    b"x-authorization-key": "x-authorization-key",
    HEADER_BYTES: HEADER,
}


class FastPath:
    def __init__(
        self,
        app: ASGIApp,
        gate: Gate,
        statuses: StatusService,
        sends: DirectSend | None = None,
    ) -> None:
        self._app = app
        self._gate = gate
        self._statuses = statuses
        self._sends = sends  # POST /bat/messagelist (api.direct_send)
        self._timer = RouteTimer("GET", ROUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and path.startswith(_PREFIX)
            and "/" not in path[len(_PREFIX) :]
            and len(path) > len(_PREFIX)
            and path != _BULK  # POST only: FastAPI answers 405 (with Allow)
        ):
            # ASGI paths arrive percent-decoded already.
            await self._status(scope, send, path[len(_PREFIX) :])
            return
        if (
            self._sends is not None
            and path == SEND_PATH
            and scope["type"] == "http"
            and scope["method"] == "POST"
        ):
            await self._sends(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def respond_now(
        self, raw_headers: RawHeaders, message_id: str, can_wait: bool
    ) -> Response | asyncio.Future[Response] | None:
        """The whole response to `GET /bat/message/{message_id}`, for api.server to write
        straight to the connection: at once when it can be given at once
        (`answer_now`), else, if the caller `can_wait` and the key was admitted at once,
        a future of it (a task that awaits the store's read, on PostgreSQL shared with
        the other lookups of the moment). None: the request goes the ASGI way (which
        admits it: nothing is counted here first). With the request id, metrics and
        access log."""
        if not can_wait and not self._statuses.renders_now:
            return None
        started = time.perf_counter()
        headers = wanted(raw_headers, _READ)
        info = RequestInfo(request_id_from(headers.get(HEADER)))
        token = current.set(info)
        try:
            now = answer_now(self._gate, self._statuses, headers, message_id)
            if isinstance(now, tuple):
                status, body, extra = now
                self._done(status, started, info)
                return status, json_headers(body, info, extra), body
            if now is None:
                return None  # not admitted at once: the ASGI way knows the client's address
            # The task copies the context now, while `current` holds this request's info.
            return asyncio.ensure_future(self._later(headers, message_id, now, started, info))
        finally:
            current.reset(token)

    async def _later(
        self,
        headers: dict[str, str],
        message_id: str,
        account: Account,
        started: float,
        info: RequestInfo,
    ) -> Response:
        status, body, extra = await answer_later(
            self._gate, self._statuses, headers, "-", message_id, account
        )
        self._done(status, started, info)
        return status, json_headers(body, info, extra), body

    async def _status(self, scope: Scope, send: Send, message_id: str) -> None:
        started = time.perf_counter()
        headers = wanted(scope["headers"], _READ)
        info = RequestInfo(request_id_from(headers.get(HEADER)))
        token = current.set(info)
        status = 500
        try:
            now = answer_now(self._gate, self._statuses, headers, message_id)
            if isinstance(now, tuple):
                status, body, extra = now
            else:
                address = client_address(scope)
                status, body, extra = await answer_later(
                    self._gate, self._statuses, headers, address, message_id, now
                )
            out = json_headers(body, info, extra)
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": body})
        finally:
            self._done(status, started, info)
            current.reset(token)

    def _done(self, status: int, started: float, info: RequestInfo) -> None:
        seconds = time.perf_counter() - started
        self._timer.observe(status, seconds)
        if ACCESS.isEnabledFor(logging.INFO):
            log_access("GET", ROUTE, status, seconds, info)
