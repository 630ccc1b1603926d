"""A thin ASGI layer in front of FastAPI for the hottest route, the status lookup.

FastAPI's request and response machinery costs more than the lookup itself;
this answers `GET /bat/message/{id}` straight from the ASGI scope with the same
services the FastAPI route uses (which stays, for the OpenAPI document and for
anything this layer passes on). Everything else goes to FastAPI untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from batgate.api.errors import ApiError, error_body, internal_error
from batgate.api.gate import Gate
from batgate.api.status import StatusService

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PREFIX = "/bat/message/"
_JSON = (b"content-type", b"application/json")
_CREDENTIALS = {b"authorization": "authorization", b"x-authorization-key": "x-authorization-key"}


class FastPath:
    def __init__(self, app: ASGIApp, gate: Gate, statuses: StatusService) -> None:
        self._app = app
        self._gate = gate
        self._statuses = statuses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and path.startswith(_PREFIX)
            and "/" not in path[len(_PREFIX) :]
            and len(path) > len(_PREFIX)
        ):
            # ASGI paths arrive percent-decoded already.
            await self._status(scope, send, path[len(_PREFIX) :])
            return
        await self._app(scope, receive, send)

    async def _status(self, scope: Scope, send: Send, message_id: str) -> None:
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            # Only the credentials are read here; the first of repeated headers wins,
            # as in Starlette (the FastAPI route).
            name = _CREDENTIALS.get(key)
            if name is not None and name not in headers:
                headers[name] = value.decode("latin-1")
        try:
            account = await self._gate.admit(headers)
            body = await self._statuses.render(account.id, message_id)
            status, extra = 200, []
        except ApiError as exc:
            body = error_body(exc.code, exc.message)
            status = exc.status
            extra = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
        except Exception:
            log.exception("status lookup failed")
            err = internal_error()
            body, status, extra = error_body(err.code, err.message), err.status, []
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [_JSON, (b"content-length", str(len(body)).encode()), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body})
