"""The console: the operators' pages at `/console`, served by `batgate serve` itself
(docs/console.md). Server-rendered (Jinja2), with one small script of our own for the
live parts; charts are SVG drawn here. Off with `console.enabled = false`.

Each page is a module with `routes(console) -> APIRouter`; `PAGES` lists them.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from batgate.api.logins import LoginGuard
from batgate.config import Settings
from batgate.console import accounts, auth, connectors, messages, overview, webhooks
from batgate.console.context import HERE, Console, LoginNeeded, Refused, login_redirect
from batgate.store.manager import Store

PAGES = (auth, overview, messages, connectors, webhooks, accounts)


def add_console(app: FastAPI, store: Store, settings: Settings) -> Console | None:
    """Mount the console on `app` (nothing when it is switched off)."""
    if not settings.console.enabled:
        return None
    console = Console(store, settings, LoginGuard(settings.auth))
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for page in PAGES:
        app.include_router(page.routes(console), prefix="/console")

    async def on_login_needed(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginNeeded)
        return login_redirect(exc.back)

    async def on_refused(request: Request, exc: Exception) -> Response:
        response: HTMLResponse = console.page(request, "refused.html", None, why=str(exc))
        response.status_code = 403
        return response

    app.add_exception_handler(LoginNeeded, on_login_needed)
    app.add_exception_handler(Refused, on_refused)
    return console
