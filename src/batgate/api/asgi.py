"""What the routes answered straight from the ASGI scope share (api.fastpath's status
lookup, api.direct_send's send): ASGI's types, the headers a route reads, an answer's
headers, and an error as an answer in the SPEC §6 shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from batgate.api.errors import ApiError, error_body, internal_error
from batgate.observability.requests import HEADER_BYTES, RequestInfo

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]
# An answer as the ASGI layer writes it: status, body, extra headers.
Answer = tuple[int, bytes, RawHeaders]

_JSON = (b"content-type", b"application/json")


def wanted(raw: RawHeaders, read: Mapping[bytes, str]) -> dict[str, str]:
    """The headers a route reads (`read`: raw name → name); the first of repeated ones
    wins, as in Starlette (the FastAPI routes)."""
    headers: dict[str, str] = {}
    for key, value in raw:
        name = read.get(key)
        if name is not None and name not in headers:
            headers[name] = value.decode("latin-1")
    return headers


def json_headers(body: bytes, info: RequestInfo, extra: RawHeaders) -> RawHeaders:
    return [
        _JSON,
        (b"content-length", str(len(body)).encode()),
        (HEADER_BYTES, info.request_id.encode()),
        *extra,
    ]


def error_answer(exc: ApiError) -> Answer:
    extra = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    return exc.status, error_body(exc.code, exc.message), extra


def failed_answer(what: str) -> Answer:
    """An unexpected failure (logged with its trace) as a 500 without one."""
    log.exception("%s failed", what)
    err = internal_error()
    return err.status, error_body(err.code, err.message), []
