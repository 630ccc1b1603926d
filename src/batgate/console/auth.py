"""Logging in and out of the console (docs/console.md, "Operators").

The login form is protected like every other form: a token in a short-lived cookie
and the same token in the form (the cookie is `SameSite=Strict`: another site's page
cannot post it). Failed logins are charged to the address and the name (the API's
`LoginGuard`, with its own counts): after `auth.failures_per_address` (or
`failures_per_username`) in `auth.failure_window` the form answers 429 before any
password is checked. A login opens a session of `console.session_hours`: a random
token in an HttpOnly, `SameSite=Strict` cookie (`Secure` behind TLS), kept in the
database as its SHA-256.
"""

from __future__ import annotations

import hmac

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from batgate.api.errors import ApiError
from batgate.console.context import (
    COOKIE,
    Console,
    Refused,
    new_token,
    redirect,
    token_hash,
)
from batgate.domain.credentials import verify_password
from batgate.store.operators import Operator

LOGIN_COOKIE = "batgate_console_login"


def routes(c: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/login", include_in_schema=False)
    async def login_form(request: Request, next: str = "/console/") -> Response:
        return _form(c, request, _safe(next))

    @router.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        back = _safe(values.get("next", "/console/"))
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(values.get("csrf", ""), expected):
            raise Refused("the login form has expired: load it again")
        name, password = values.get("name", ""), values.get("password", "")
        address = c.address(request)
        try:
            c.guard.admit(address, name)
            operator = await c.store.operators.named(name)
            async with c.guard.password_check():
                hashed = operator.password_hash if operator else None
                ok = await anyio.to_thread.run_sync(verify_password, hashed, password)
        except ApiError as exc:
            wait = exc.headers.get("Retry-After", "a few")
            message = f"Too many failed logins: try again in {wait} seconds."
            return _form(c, request, back, message, 429)
        if operator is None or not ok or operator.disabled:
            c.guard.failed(address, "console", "wrong password", name)
            return _form(c, request, back, "Wrong name or password.", 401)
        return await _logged_in(c, request, operator, back)

    @router.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        session = await c.session(request)
        await c.form(request, session)
        token = request.cookies.get(COOKIE, "")
        await c.store.operators.close_session(token_hash(token))
        response = redirect("/console/login")
        response.delete_cookie(COOKIE, path="/console")
        return response

    return router


def _form(
    c: Console, request: Request, back: str, error: str | None = None, status: int = 200
) -> Response:
    token = new_token()
    response = c.page(request, "login.html", None, csrf=token, next=back, error=error)
    response.status_code = status
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=c.secure(request),
    )
    return response


async def _logged_in(c: Console, request: Request, operator: Operator, back: str) -> Response:
    token, csrf = new_token(), new_token()
    now = c.clock()
    hours = c.settings.console.session_hours
    await c.store.operators.open_session(operator, token_hash(token), csrf, now, now + hours * 3600)
    response = redirect(back)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(hours * 3600),
        path="/console",
        httponly=True,
        samesite="strict",
        secure=c.secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


def _safe(back: str) -> str:
    """Back to a console page only (never another site: `//evil`, `/console/../x`)."""
    if back.startswith("/console") and "//" not in back and ".." not in back:
        return back
    return "/console/"
