"""What every console page shares: the store, the templates, the operator's session,
and the checks every request passes (docs/console.md, "Security").

- A page needs a live session (the `batgate_console` cookie): without one, a GET is
  sent to the login page, anything else too (nothing is done).
- Every form carries the session's CSRF token; a POST without it, or with another,
  is refused (403) and changes nothing.
- Every answer is `Cache-Control: no-store`, may not be framed, and runs no script
  but the console's own (a Content-Security-Policy of 'self').
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from batgate.api.gate import client_address
from batgate.api.logins import LoginGuard
from batgate.config import Settings
from batgate.domain.notifications import rfc3339
from batgate.store.manager import Store
from batgate.store.operators import Session

COOKIE = "batgate_console"
HERE = Path(__file__).parent
NAV = (
    ("overview", "/console/", "Overview"),
    ("messages", "/console/messages", "Messages"),
    ("connectors", "/console/connectors", "Connectors"),
    ("webhooks", "/console/webhooks", "Webhooks"),
    ("accounts", "/console/accounts", "Accounts"),
)
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}


class LoginNeeded(Exception):
    """No live session: the login page (and back here after it)."""

    def __init__(self, back: str) -> None:
        super().__init__(back)
        self.back = back


class Refused(Exception):
    """A request the console will not act on (403), with why."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class Console:
    store: Store
    settings: Settings
    guard: LoginGuard
    clock: Callable[[], float] = time.time
    templates: Jinja2Templates = field(
        default_factory=lambda: Jinja2Templates(directory=str(HERE / "templates"))
    )

    def __post_init__(self) -> None:
        self.templates.env.filters["when"] = _when
        self.templates.env.filters["when_ms"] = _when_ms
        self.templates.env.filters["money"] = _money
        self.templates.env.globals["nav"] = NAV

    async def session(self, request: Request) -> Session:
        """The request's live session; LoginNeeded when there is none."""
        token = request.cookies.get(COOKIE)
        found = None
        if token:
            found = await self.store.operators.session(token_hash(token), self.clock())
        if found is None:
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginNeeded(back if request.method == "GET" else "/console/")
        return found

    async def form(self, request: Request, session: Session) -> Mapping[str, str]:
        """The POSTed form, once its CSRF token is the session's; Refused if not."""
        form = await request.form()
        given = form.get("csrf")
        if not isinstance(given, str) or not hmac.compare_digest(given, session.csrf):
            raise Refused("the form has no valid CSRF token: reload the page and try again")
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def page(
        self, request: Request, template: str, session: Session | None, **values: Any
    ) -> HTMLResponse:
        context = {
            "request": request,
            "operator": None if session is None else session.operator.name,
            "csrf": None if session is None else session.csrf,
            "refresh": self.settings.console.refresh_seconds,
            **values,
        }
        response = self.templates.TemplateResponse(request, template, context)
        response.headers.update(HEADERS)
        return response

    def address(self, request: Request) -> str:
        return client_address(request.scope)

    def secure(self, request: Request) -> bool:
        """Behind TLS (directly, or a proxy saying so): cookies are `Secure` then."""
        forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        return request.url.scheme == "https" or forwarded == "https"


def redirect(to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    response.headers.update(HEADERS)
    return response


def login_redirect(back: str) -> Response:
    return redirect(f"/console/login?next={quote(back, safe='/')}")


def _when(at: float | None) -> str:
    return "" if at is None else rfc3339(at).replace("T", " ").removesuffix("Z")


def _when_ms(at: float | None) -> str:
    if at is None:
        return ""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _money(amount: float | None, currency: str | None = None) -> str:
    if amount is None:
        return ""
    return f"{amount:.2f}" + (f" {currency}" if currency else "")
