"""The HTTP API: FastAPI for the surface and the OpenAPI document, lean handlers inside."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline

from batgate import __version__, heap
from batgate.api.auth import Authenticator
from batgate.api.callbacks import CallbackScreen
from batgate.api.carriers import StoredReceipts, add_carrier_callbacks
from batgate.api.direct_send import DirectSend
from batgate.api.errors import ApiError, install_handlers, not_found
from batgate.api.fastpath import FastPath
from batgate.api.gate import Gate, client_address
from batgate.api.inbound import inbound_page
from batgate.api.logins import LoginGuard
from batgate.api.probes import add_probes
from batgate.api.ratelimit import RateLimiter
from batgate.api.reports import messagelist_status
from batgate.api.schemas import (
    ADD_SUPPRESSIONS,
    ADDED_LINKS,
    CANCEL_MESSAGE,
    GET_MESSAGELIST,
    GET_STATUS,
    GET_STATUSES,
    IDEMPOTENCY_KEY,
    INBOUND_PAGE_PARAMETERS,
    LIST_INBOUND,
    LIST_SUPPRESSIONS,
    MESSAGE_ID_PARAMETER,
    MESSAGELIST_LINKS,
    NUMBER_PARAMETER,
    PAGE_PARAMETERS,
    REMOVE_SUPPRESSION,
    SEND,
    SEND_EXAMPLES,
    SEND_LINKS,
    STATUS_LINKS,
    SUPPRESSION_PAGE_PARAMETERS,
    SUPPRESSIONS_LINKS,
    answer,
    describe_api,
    error_response,
    error_responses,
    json_body,
)
from batgate.api.send import SendService
from batgate.api.status import StatusService, message_ids_of, status_answer
from batgate.api.suppressions import add_suppressions, remove_suppression, suppressions_page
from batgate.api.telemetry import Telemetry
from batgate.channels.registry import build_callback_readers
from batgate.config import Settings
from batgate.console import add_console
from batgate.domain.addresses import AddressPolicy
from batgate.domain.validation import Limits
from batgate.engine.cancels import Cancels
from batgate.engine.changes import Changes
from batgate.engine.dispatcher import worker_name
from batgate.engine.ratebook import RateBook, configured_rates
from batgate.engine.reception import Reception, inbound_policy
from batgate.engine.runner import Engine
from batgate.observability.readiness import Shutdown
from batgate.store.cancellation import Refusal
from batgate.store.manager import Store

_JSON = "application/json"


def create_app(
    settings: Settings, *, workers: bool = True, shutdown: Shutdown | None = None
) -> FastPath:
    """The ASGI app for `batgate serve`; with `workers`, the engine runs inside it.
    `shutdown`: set when the process begins to stop (readiness, the engine's budget)."""
    shutdown = shutdown if shutdown is not None else Shutdown()
    store = Store.connect(
        settings.database_url,
        settings.database_pool_size,
        settings.database_max_overflow,
        settings.suppression_cache_seconds,
    )
    engine = Engine(store, settings) if workers else None
    limiter = (
        RateLimiter(store.rate_buckets, settings.rate_limit.rate, settings.rate_limit.burst)
        if settings.rate_limit.enabled
        else None
    )
    logins = LoginGuard(settings.auth)
    gate = Gate(Authenticator(store, settings.auth_cache_seconds, logins), limiter)
    statuses = StatusService(store, settings.status_cache_size)
    sender = SendService(
        store,
        Limits(max_parts=settings.max_parts, default_ttl=settings.default_ttl),
        settings.max_messages_per_request,
        settings.max_body_bytes,
        on_stored=engine.wake if engine else _nothing,
        callbacks=CallbackScreen(AddressPolicy.allowing(settings.webhooks.allow_private_callbacks)),
        quiet_hours=settings.quiet_hours(),
    )

    cancels = Cancels(
        store,
        Changes(store, settings.fx, on_events=engine.webhooks.wake if engine else _nothing),
        RateBook(store, configured_rates(settings.rates)),
        worker_name(),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await store.upgrade()
        if engine is not None:
            await engine.start()
        heap.settle()
        try:
            yield
        finally:
            if engine is not None:
                await engine.stop(shutdown.remaining(settings.shutdown_timeout))
            await store.close()

    # /docs (Swagger UI) and /redoc with their scripts and styles served from the
    # installed package (under /static-offline-docs), so they work without the internet.
    app = FastAPIOffline(
        title="batgate",
        version=__version__,
        description="A self-hosted messaging gateway speaking the SMSBAT REST API.",
        lifespan=lifespan,
        # Swagger UI would otherwise send the document to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
        # No trailing-slash redirects: Starlette builds them from the request's Host
        # header, so `/bat/messagelist/` would send a client to wherever Host said.
        redirect_slashes=False,
    )
    install_handlers(app)
    _routes(app, store, gate, sender, statuses)
    _cancel_route(app, gate, statuses, cancels)
    _inbound_route(app, store, gate)
    _suppression_routes(app, store, gate, sender)
    sink = (
        engine.reconciler
        if engine is not None
        else StoredReceipts(store, Reception(store, inbound_policy(settings)))
    )
    add_carrier_callbacks(app, store, build_callback_readers(settings), sink)
    add_probes(app, store, settings, shutdown)
    add_console(app, store, settings)
    _document_request_body(app, settings.max_messages_per_request)
    return FastPath(Telemetry(app), gate, statuses, DirectSend(gate, sender))


def _routes(
    app: FastAPI, store: Store, gate: Gate, sender: SendService, statuses: StatusService
) -> None:
    @app.post(
        "/bat/messagelist",
        response_model=None,
        operation_id=SEND,
        tags=["SMSBAT"],
        responses={
            200: answer(
                "SendResponse",
                "One entry per message, in order: `accepted` (stored, with its id) or "
                "`rejected` (with the error code of its first problem).",
                SEND_LINKS,
            ),
            **error_responses(400, 401, 413, 415),
            422: error_response(
                422,
                "The Idempotency-Key was used with a different body.",
                ["IDEMPOTENCY_KEY_REUSED"],
            ),
            **error_responses(429, 500),
        },
        openapi_extra={
            "parameters": [IDEMPOTENCY_KEY],
            **json_body("SendRequest", SEND_EXAMPLES),
        },
        summary="Send a batch of messages",
    )
    async def send_messages(request: Request) -> Response:
        account = await gate.admit_body(request.headers, client_address(request.scope))
        body = await sender.read_body(request.headers.get("content-length"), request.stream())
        key = request.headers.get("idempotency-key")
        return Response(await sender.send(account, body, key), media_type=_JSON)

    @app.get(
        "/bat/messagelist/{messagelistId}",
        response_model=None,
        operation_id=GET_MESSAGELIST,
        tags=["batgate"],
        responses={
            200: answer(
                "MessageListSummary",
                "The whole list's counts and cost, and one page of its messages' statuses.",
                MESSAGELIST_LINKS,
            ),
            **error_responses(401, 404),
            422: error_response(422, "A bad `limit` or `cursor`.", ["INVALID_REQUEST"]),
            **error_responses(429, 500),
        },
        openapi_extra={"parameters": PAGE_PARAMETERS},
        summary="A message list's counts, cost and its messages' statuses, paged (batgate)",
    )
    async def messagelist_summary(messagelistId: str, request: Request) -> Response:  # noqa: N803
        account = await gate.admit(request.headers, client_address(request.scope))
        answer = await messagelist_status(
            store, statuses, account, messagelistId, request.query_params
        )
        return Response(answer, media_type=_JSON)

    @app.post(
        "/bat/message/status",
        response_model=None,
        operation_id=GET_STATUSES,
        tags=["batgate"],
        responses={
            200: answer(
                "StatusesResponse",
                "One entry per requested id, in order: its status document, or NOT_FOUND.",
            ),
            400: error_response(400, "The body is not JSON."),
            **error_responses(401, 413, 415),
            422: error_response(
                422,
                "JSON of another shape: no `messageIds` array, an empty one, more than "
                "1000 ids, an id that is not a string.",
                ["INVALID_REQUEST"],
            ),
            **error_responses(429, 500),
        },
        openapi_extra=json_body("StatusesRequest"),
        summary="The statuses of up to 1000 messages at once (batgate extension)",
    )
    async def message_statuses(request: Request) -> Response:
        account = await gate.admit_body(request.headers, client_address(request.scope))
        body = await sender.read_body(request.headers.get("content-length"), request.stream())
        answer = await statuses.render_many(account.id, message_ids_of(body))
        return Response(answer, media_type=_JSON)

    @app.get(
        "/bat/message/{messageId}",
        response_model=None,
        operation_id=GET_STATUS,
        tags=["SMSBAT"],
        responses={
            200: answer("StatusResponse", "The message's status.", STATUS_LINKS),
            **error_responses(401, 404, 429, 500),
        },
        openapi_extra={"parameters": [MESSAGE_ID_PARAMETER]},
        summary="A message's delivery status",
    )
    async def message_status(messageId: str, request: Request) -> Response:  # noqa: N803
        _not_the_bulk_read(messageId)
        status, body, extra = await status_answer(
            gate, statuses, request.headers, client_address(request.scope), messageId
        )
        headers = {k.decode(): v.decode() for k, v in extra}
        return Response(body, status_code=status, media_type=_JSON, headers=headers)

    @app.get(
        "/healthz",
        operation_id="healthz",
        tags=["operations"],
        summary="Liveness: 200 once the gateway serves",
    )
    async def healthz() -> dict[str, str | int]:
        # `pid`: which process answers, for supervisors that started it on a given port.
        return {"status": "ok", "version": __version__, "pid": os.getpid()}


def _cancel_route(app: FastAPI, gate: Gate, statuses: StatusService, cancels: Cancels) -> None:
    @app.delete(
        "/bat/message/{messageId}",
        response_model=None,
        operation_id=CANCEL_MESSAGE,
        tags=["batgate"],
        responses={
            200: answer(
                "StatusResponse",
                "Cancelled: its status document, now `permanenterror` with cost 0.",
            ),
            **error_responses(401, 404),
            409: error_response(
                409,
                "Past `scheduled`: handed to a carrier already (or being handed over "
                "right now), or final.",
                ["NOT_CANCELLABLE"],
            ),
            **error_responses(429, 500),
        },
        openapi_extra={"parameters": [MESSAGE_ID_PARAMETER]},
        summary="Cancel a message that is still scheduled (SPEC §12)",
    )
    async def cancel_message(messageId: str, request: Request) -> Response:  # noqa: N803
        _not_the_bulk_read(messageId)
        account = await gate.admit(request.headers, client_address(request.scope))
        outcome = await cancels.cancel(account.id, messageId)
        if outcome is Refusal.NOT_FOUND:
            raise not_found(f"no message {messageId!r}")
        if isinstance(outcome, Refusal):
            why = (
                "it is being handed to a carrier right now"
                if outcome is Refusal.IN_HAND
                else "it is past scheduled (handed to a carrier, or final)"
            )
            raise ApiError(
                409, "NOT_CANCELLABLE", f"message {messageId} cannot be cancelled: {why}"
            )
        return Response(await statuses.render(account.id, messageId), media_type=_JSON)


def _inbound_route(app: FastAPI, store: Store, gate: Gate) -> None:
    @app.get(
        "/bat/inbound",
        response_model=None,
        operation_id=LIST_INBOUND,
        tags=["batgate"],
        responses={
            200: answer("InboundPage", "One page of the account's inbound messages, oldest first."),
            **error_responses(401),
            422: error_response(422, "A bad `limit` or `after`.", ["INVALID_REQUEST"]),
            **error_responses(429, 500),
        },
        openapi_extra={"parameters": INBOUND_PAGE_PARAMETERS},
        summary="The account's inbound messages (SPEC §10), paged",
    )
    async def list_inbound(request: Request) -> Response:
        account = await gate.admit(request.headers, client_address(request.scope))
        answer = await inbound_page(store.inbox, account, request.query_params)
        return Response(answer, media_type=_JSON)


def _suppression_routes(app: FastAPI, store: Store, gate: Gate, sender: SendService) -> None:
    """The account's suppression list (SPEC §11; answers in api/suppressions.py)."""
    listed = store.suppressions

    @app.get(
        "/bat/suppressions",
        response_model=None,
        operation_id=LIST_SUPPRESSIONS,
        tags=["batgate"],
        responses={
            200: answer(
                "SuppressionsPage",
                "One page of the account's suppression list, in number order.",
                SUPPRESSIONS_LINKS,
            ),
            **error_responses(401),
            422: error_response(422, "A bad `limit` or `after`.", ["INVALID_REQUEST"]),
            **error_responses(429, 500),
        },
        openapi_extra={"parameters": SUPPRESSION_PAGE_PARAMETERS},
        summary="The account's suppression list (opt-outs), paged",
    )
    async def list_suppressions(request: Request) -> Response:
        account = await gate.admit(request.headers, client_address(request.scope))
        answer = await suppressions_page(listed, account, request.query_params)
        return Response(answer, media_type=_JSON)

    @app.post(
        "/bat/suppressions",
        response_model=None,
        operation_id=ADD_SUPPRESSIONS,
        tags=["batgate"],
        responses={
            200: answer(
                "SuppressionsAdded",
                "Every number of the request is on the list now; `added` says which are new.",
                ADDED_LINKS,
            ),
            400: error_response(400, "The body is not JSON."),
            **error_responses(401, 413, 415),
            422: error_response(
                422,
                "JSON of another shape, or a number not in E.164 form: nothing was added.",
                ["INVALID_REQUEST"],
            ),
            **error_responses(429, 500),
        },
        openapi_extra=json_body("SuppressionsRequest"),
        summary="Add numbers to the account's suppression list",
    )
    async def suppress(request: Request) -> Response:
        account = await gate.admit_body(request.headers, client_address(request.scope))
        body = await sender.read_body(request.headers.get("content-length"), request.stream())
        return Response(await add_suppressions(listed, account, body), media_type=_JSON)

    @app.delete(
        "/bat/suppressions/{number}",
        response_model=None,
        operation_id=REMOVE_SUPPRESSION,
        tags=["batgate"],
        responses={
            200: answer("Suppression", "The entry taken off the list."),
            **error_responses(401),
            404: error_response(404, "The number is not on the account's list."),
            422: error_response(422, "Not a number in E.164 form.", ["INVALID_REQUEST"]),
            **error_responses(429, 500),
        },
        openapi_extra={"parameters": [NUMBER_PARAMETER]},
        summary="Take a number off the account's suppression list",
    )
    async def unsuppress(number: str, request: Request) -> Response:
        account = await gate.admit(request.headers, client_address(request.scope))
        return Response(await remove_suppression(listed, account, number), media_type=_JSON)


def _not_the_bulk_read(message_id: str) -> None:
    """`/bat/message/status` is the bulk read's path, which takes POST only: 405."""
    if message_id == "status":
        raise ApiError(
            405,
            "METHOD_NOT_ALLOWED",
            '/bat/message/status takes POST with {"messageIds": [...]}',
            {"Allow": "POST"},
        )


def _nothing() -> None:
    return None


def _document_request_body(app: FastAPI, max_messages: int) -> None:
    """Finish the OpenAPI document as api/schemas.py describes the wire format.

    The send and bulk status routes read their bodies themselves (see api/send.py,
    api/status.py), so FastAPI knows none of their models; the routes' `openapi_extra`
    and `responses` point at the components `describe_api` adds.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_api(build(), max_messages)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
