"""The worker's small HTTP server: `/metrics`, `/readyz`, `/healthz`.

`batgate worker` has no API port, so with `--metrics-port` it serves these with
aiohttp (already the webhook sender's client) on its own event loop. The same
loop matters: the database gauges are read asynchronously at scrape time, which
prometheus_client's threaded `start_http_server` could not do without a bridge.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from batgate import __version__
from batgate.observability import readiness
from batgate.observability.backlog import BacklogGauges
from batgate.observability.metrics import build_registry
from batgate.store.gauges import Gauges

_JSON = "application/json"


async def start_exporter(
    host: str,
    port: int,
    gauges: Gauges,
    cache_seconds: float,
    timeout: float,
    shutdown: readiness.Shutdown | None = None,
) -> web.AppRunner:
    """Serve on `host:port` until the returned runner's `cleanup()`."""
    backlog = BacklogGauges(gauges, cache_seconds, timeout)
    registry = build_registry(backlog)

    async def metrics(_request: web.Request) -> web.Response:
        await backlog.refresh()
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def readyz(_request: web.Request) -> web.Response:
        status, body = await readiness.answer(gauges, timeout, shutdown)
        return web.Response(body=body, status=status, content_type=_JSON)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
