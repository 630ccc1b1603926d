"""Request ids, request-duration metrics and the access log for what FastAPI answers.

Wraps the FastAPI app (the status fast path in api/fastpath.py does the same for
its route, more cheaply). The route label is the matched route's template
(`/bat/messagelist/{messagelistId}`), never the raw path, which would make a time
series per message id; a request no route matched counts as `unmatched`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from batgate.api.asgi import ASGIApp, Message, Receive, Scope, Send
from batgate.observability.logs import ACCESS, log_access
from batgate.observability.metrics import UNMATCHED, RouteTimer, method_label
from batgate.observability.requests import (
    HEADER_BYTES,
    RequestInfo,
    current,
    request_id_from,
)


class Telemetry:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._timers: dict[tuple[str, str], RouteTimer] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        info = RequestInfo(request_id_from(_header(scope, HEADER_BYTES)))
        echo = (HEADER_BYTES, info.request_id.encode())
        status = 500  # unless a response starts

        async def reply(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echo]}
            await send(message)

        token = current.set(info)
        try:
            await self._app(scope, receive, reply)
        finally:
            seconds = time.perf_counter() - started
            method, route = method_label(scope["method"]), _route(scope)
            self._timer(method, route).observe(status, seconds)
            if ACCESS.isEnabledFor(logging.INFO):
                log_access(method, route, status, seconds, info)
            current.reset(token)

    def _timer(self, method: str, route: str) -> RouteTimer:
        timer = self._timers.get((method, route))
        if timer is None:
            timer = self._timers[(method, route)] = RouteTimer(method, route)
        return timer


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _route(scope: Scope) -> str:
    """The template of the route Starlette matched (it leaves it in the scope)."""
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) else UNMATCHED
