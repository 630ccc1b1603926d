"""Request-level errors in the SPEC §6 shape: `{"error": {"code": …, "message": …}}`.

Exceptions:
    ApiError              an error answered with its HTTP status, code and message
      (raised by the API's own code; FastAPI's validation errors, Starlette's
      404/405 and any unexpected exception are mapped to the same shape below)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import cast

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Route

log = logging.getLogger(__name__)

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Basic realm="batgate"'}

_CODE_OF_STATUS = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_REQUEST",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
}


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


def error_response(error: ApiError) -> Response:
    return Response(
        error_body(error.code, error.message),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )


def unauthorized(message: str = "missing or invalid credentials") -> ApiError:
    return ApiError(401, "UNAUTHORIZED", message, UNAUTHORIZED_HEADERS)


def not_found(message: str = "not found") -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


def internal_error() -> ApiError:
    return ApiError(500, "INTERNAL_ERROR", "internal error; the server log has the details")


def install_handlers(app: FastAPI) -> None:
    """Answer every error in the SPEC §6 shape, never with a stack trace.

    Starlette types every handler's exception as `Exception`; each is registered
    for one class below, hence the casts.
    """

    async def on_api_error(_request: Request, exc: Exception) -> Response:
        return error_response(cast(ApiError, exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        exc = cast(StarletteHTTPException, exc)
        code = _CODE_OF_STATUS.get(exc.status_code, "INVALID_REQUEST")
        status = exc.status_code
        if status == 401:
            return error_response(unauthorized(str(exc.detail)))
        headers = dict(exc.headers or {})
        if status == 405:
            headers["Allow"] = _allowed(request) or headers.get("Allow", "")
        return error_response(ApiError(status, code, str(exc.detail), headers))

    async def on_validation_error(_request: Request, exc: Exception) -> Response:
        exc = cast(RequestValidationError, exc)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return error_response(ApiError(400, "INVALID_REQUEST", message))

    async def on_unexpected(_request: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return error_response(internal_error())

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)


def _allowed(request: Request) -> str:
    """Every method the request's path takes: Starlette's 405 names only those of the
    first route of the path (`/bat/suppressions` has a GET and a POST route). A path
    without parameters shadows the templates it also matches (`/bat/message/status`
    takes POST only, though `/bat/message/{messageId}` matches it too)."""
    routes = [
        route
        for route in request.app.router.routes
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE
    ]
    literal = [route for route in routes if not route.param_convertors]
    methods: set[str] = set()
    for route in literal or routes:
        methods |= route.methods or set()
    return ", ".join(sorted(methods))
