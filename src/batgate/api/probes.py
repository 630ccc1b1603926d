"""`GET /readyz` and `GET /metrics`: what orchestrators and Prometheus ask the API.

`/metrics` has no authentication, like most exporters: keep it off the public
side of the load balancer, or switch it off (`metrics.enabled = false`).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from batgate.api.schemas import error_responses
from batgate.config import Settings
from batgate.observability import readiness
from batgate.observability.backlog import BacklogGauges
from batgate.observability.metrics import build_registry
from batgate.store.manager import Store

_JSON = "application/json"
_READY = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"const": "ready"}},
}


def add_probes(
    app: FastAPI, store: Store, settings: Settings, shutdown: readiness.Shutdown
) -> None:
    gauges = store.gauges
    timeout = settings.readiness_timeout

    @app.get(
        "/readyz",
        response_model=None,
        operation_id="readyz",
        tags=["operations"],
        responses={
            200: {
                "description": "Ready to serve.",
                "content": {_JSON: {"schema": _READY, "example": {"status": "ready"}}},
            },
            **error_responses(503),
        },
        summary="Readiness: 200 while the database answers, else 503 NOT_READY",
    )
    async def readyz() -> Response:
        status, body = await readiness.answer(gauges, timeout, shutdown)
        return Response(body, status_code=status, media_type=_JSON)

    if not settings.metrics.enabled:
        return
    backlog = BacklogGauges(gauges, settings.metrics.cache_seconds, timeout)
    registry = build_registry(backlog)

    @app.get(
        "/metrics",
        response_model=None,
        response_class=PlainTextResponse,
        operation_id="metrics",
        tags=["operations"],
        responses={200: {"description": "The Prometheus text exposition format."}},
        summary="This process's metrics in the Prometheus text format",
    )
    async def metrics() -> Response:
        await backlog.refresh()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
