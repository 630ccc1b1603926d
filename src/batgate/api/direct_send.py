"""`POST /bat/messagelist` straight from the ASGI scope (issue 20): the same admission,
body limit, validation and group-commit store as the FastAPI route (api.send's
`SendService`), without FastAPI's routing, dependency and middleware layers, which
cost more than a one-message send itself. The FastAPI route stays, for the OpenAPI
document; api.fastpath sends this route's requests here.

What the FastAPI stack did for the route is done here too: the request id (taken or
made, echoed), the duration histogram and the access log line; errors in the SPEC
§6 shape (a 401 with `WWW-Authenticate`), an unexpected one as 500 without a trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect

from batgate.api.asgi import (
    Answer,
    Receive,
    Scope,
    Send,
    error_answer,
    failed_answer,
    json_headers,
    wanted,
)
from batgate.api.errors import ApiError
from batgate.api.gate import Gate, client_address
from batgate.api.send import SendService
from batgate.observability.logs import ACCESS, log_access
from batgate.observability.metrics import RouteTimer
from batgate.observability.requests import (
    HEADER,
    HEADER_BYTES,
    RequestInfo,
    current,
    request_id_from,
)

PATH = "/bat/messagelist"
# The only headers read here.
_READ = {
    b"authorization": "authorization",
    b"x-authorization-key": "x-authorization-key",
    b"content-type": "content-type",
    b"content-length": "content-length",
    b"idempotency-key": "idempotency-key",
    HEADER_BYTES: HEADER,
}


class DirectSend:
    def __init__(self, gate: Gate, sender: SendService) -> None:
        self._gate = gate
        self._sender = sender
        self._timer = RouteTimer("POST", PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = wanted(scope["headers"], _READ)
        info = RequestInfo(request_id_from(headers.get(HEADER)))
        token = current.set(info)
        status = 500
        try:
            status, body, extra = await self._answer(scope, receive, headers)
            out = json_headers(body, info, extra)
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": body})
        finally:
            seconds = time.perf_counter() - started
            self._timer.observe(status, seconds)
            if ACCESS.isEnabledFor(logging.INFO):
                log_access("POST", PATH, status, seconds, info)
            current.reset(token)

    async def _answer(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> Answer:
        try:
            account = await self._gate.admit_body(headers, client_address(scope))
            body = await self._sender.read_body(headers.get("content-length"), _chunks(receive))
            return 200, await self._sender.send(account, body, headers.get("idempotency-key")), []
        except ApiError as exc:
            return error_answer(exc)
        except Exception:
            return failed_answer("a send")


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body's chunks as they come; ClientDisconnect if the client goes."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
