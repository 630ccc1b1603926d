"""Connectors (docs/console.md, page 4): each one's state, links, hand-overs in flight,
rate and errors in the last minute, and its last error, summed over the running
processes; drain and enable buttons — the same switch as `batgate connectors drain` /
`enable`, kept in the database, taken up by every process within
`dispatcher.connector_report_seconds`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from batgate.console.context import Console, Refused, redirect
from batgate.engine.connector_board import connector_views, switch_connector


def routes(c: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/connectors", include_in_schema=False)
    async def connectors(request: Request, done: str = "") -> Response:
        session = await c.session(request)
        now = c.clock()
        found = await connector_views(c.store, c.settings, now)
        return c.page(
            request, "connectors.html", session, page="connectors", found=found, now=now, done=done
        )

    @router.post("/connectors/{name}/{action}", include_in_schema=False)
    async def switch(request: Request, name: str, action: str) -> Response:
        session = await c.session(request)
        await c.form(request, session)
        if action not in ("drain", "enable"):
            raise Refused(f"no action {action!r}: drain or enable")
        drained = action == "drain"
        if not await switch_connector(c.store, c.settings, name, drained, c.clock()):
            raise Refused(f"no connector named {name!r}")
        word = "drained" if drained else "enabled"
        return redirect(f"/console/connectors?done={word}+{name}")

    return router
