"""Webhooks (docs/console.md, page 5): each account's endpoint with what it has not
taken yet (failing: pending after a failed attempt; given up), and those events, the
newest first; retry one or every given-up event (`batgate webhooks retry`), send a
failing one now, and disable or enable an endpoint (`batgate accounts set-webhook
--disable` / `--enable`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from batgate.console.context import Console, Refused, redirect

SHOWN = 200  # events on the page


def routes(c: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/webhooks", include_in_schema=False)
    async def webhooks(request: Request, account: str = "", done: str = "") -> Response:
        session = await c.session(request)
        endpoints = await c.store.outbox.endpoints()
        events = await c.store.outbox.events(account or None, limit=SHOWN, failing=True)
        return c.page(
            request,
            "webhooks.html",
            session,
            page="webhooks",
            endpoints=endpoints,
            events=events,
            account=account,
            done=done,
            now=c.clock(),
        )

    @router.post("/webhooks/events/{event_id}/retry", include_in_schema=False)
    async def retry_one(request: Request, event_id: int) -> Response:
        session = await c.session(request)
        await c.form(request, session)
        now = c.clock()
        count = await c.store.outbox.retry(event_id, now) or await c.store.outbox.retry_now(
            event_id, now
        )
        if not count:
            raise Refused(f"event {event_id} is neither failing nor given up")
        return redirect(f"/console/webhooks?done=event+{event_id}+sent+again")

    @router.post("/webhooks/retry-all", include_in_schema=False)
    async def retry_all(request: Request) -> Response:
        session = await c.session(request)
        await c.form(request, session)
        count = await c.store.outbox.retry(None, c.clock())
        return redirect(f"/console/webhooks?done={count}+given-up+events+sent+again")

    @router.post("/webhooks/endpoints/{username}/{action}", include_in_schema=False)
    async def endpoint(request: Request, username: str, action: str) -> Response:
        session = await c.session(request)
        await c.form(request, session)
        if action == "disable":
            values: dict[str, object] = {"webhook_enabled": False}
            values["webhook_disabled_reason"] = f"disabled by operator {session.operator.name}"
        elif action == "enable":
            values = {"webhook_enabled": True, "webhook_disabled_reason": None}
        else:
            raise Refused(f"no action {action!r}: disable or enable")
        if await c.store.update_account(username, **values) is None:
            raise Refused(f"no account named {username!r}")
        return redirect(f"/console/webhooks?done={username}'s+endpoint+{action}d")

    return router
