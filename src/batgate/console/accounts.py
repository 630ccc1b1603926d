"""Accounts (docs/console.md, page 6): every account with its currency, webhook URL,
owned numbers and suppression list's size; create one, disable or enable it, rotate
its API key, set its webhook URL, give it numbers or take them back. A new key (and
a new account's webhook secret) is shown once, on the answer to the form that made
it, and never again: as `batgate accounts create` prints it once.

Each account has the gateway's rate limit (`rate_limit.*`) unless the operator gives it
one of its own (here, or `batgate accounts set-rate-limit`)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import Response

from batgate.console.context import Console, Refused, redirect
from batgate.domain.account_rules import account_problem, rate_limit_problem
from batgate.domain.credentials import hash_password, key_hash, new_api_key, new_webhook_secret
from batgate.domain.inbound import owned_number_problem
from batgate.domain.urls import is_http_url
from batgate.store.inbound import NumberTaken
from batgate.store.manager import DuplicateAccountError
from batgate.store.operators import Session


def routes(c: Console) -> APIRouter:
    router = APIRouter()

    async def listing(request: Request, session: Session, **shown: object) -> Response:
        found = await c.store.list_accounts()
        numbers = await c.store.inbox.owners_numbers()
        suppressed = await c.store.suppressions.counts()
        return c.page(
            request,
            "accounts.html",
            session,
            page="accounts",
            accounts=found,
            numbers=numbers,
            suppressed=suppressed,
            limit=c.settings.rate_limit,
            currencies=sorted(c.settings.fx),
            default_currency=c.settings.default_currency,
            **shown,
        )

    @router.get("/accounts", include_in_schema=False)
    async def accounts(request: Request, done: str = "") -> Response:
        return await listing(request, await c.session(request), done=done)

    @router.post("/accounts", include_in_schema=False)
    async def create(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        username = form.get("username", "").strip()
        currency = form.get("currency", c.settings.default_currency).upper()
        url = form.get("webhook_url", "").strip() or None
        problem = account_problem(username, currency, url, c.settings.fx)
        if problem is not None:
            raise Refused(problem)
        api_key, secret = new_api_key(), new_webhook_secret()
        password = form.get("password") or None
        try:
            await c.store.create_account(
                username,
                key_hash(api_key),
                hash_password(password) if password else None,
                url,
                secret,
                currency,
            )
        except DuplicateAccountError:
            raise Refused(f"an account named {username!r} exists already") from None
        shown = {"username": username, "api_key": api_key, "webhook_secret": secret}
        return await listing(request, session, shown=shown)

    @router.post("/accounts/{username}/{action}", include_in_schema=False)
    async def change(request: Request, username: str, action: str) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        if action == "rotate-key":
            api_key = new_api_key()
            await _update(c, username, api_key_hash=key_hash(api_key))
            shown = {"username": username, "api_key": api_key}
            return await listing(request, session, shown=shown)
        await _act(c, username, action, form)
        return redirect(f"/console/accounts?done={username}:+{action}")

    return router


async def _act(c: Console, username: str, action: str, form: Mapping[str, str]) -> None:
    if action in ("disable", "enable"):
        await _update(c, username, disabled=action == "disable")
    elif action == "webhook":
        url = form.get("webhook_url", "").strip()
        if not is_http_url(url):
            raise Refused(f"the webhook URL must be an absolute http(s) URL, got {url!r}")
        values = {"webhook_url": url, "webhook_enabled": True, "webhook_disabled_reason": None}
        await _update(c, username, **values)
    elif action == "rate-limit":
        await _rate_limit(c, username, form)
    elif action in ("add-number", "remove-number"):
        await _number(c, username, action, form.get("number", "").strip())
    else:
        raise Refused(f"no action {action!r}")


async def _rate_limit(c: Console, username: str, form: Mapping[str, str]) -> None:
    """The account's own rate limit from the form; empty: the gateway's."""
    given, burst_given = form.get("rate", "").strip(), form.get("burst", "").strip()
    try:
        rate = float(given) if given else None
        burst = int(burst_given) if burst_given else None
    except ValueError:
        raise Refused(f"not a number: {given!r} / {burst_given!r}") from None
    problem = rate_limit_problem(rate, burst)
    if problem is not None:
        raise Refused(problem)
    await _update(c, username, rate_limit=rate, rate_burst=burst)


async def _number(c: Console, username: str, action: str, number: str) -> None:
    account = await c.store.account_by_username(username)
    if account is None:
        raise Refused(f"no account named {username!r}")
    if action == "remove-number":
        if not await c.store.inbox.remove_number(account.id, number):
            raise Refused(f"{username} does not own {number!r}")
        return
    problem = owned_number_problem(number)
    if problem is not None:
        raise Refused(problem)
    try:
        await c.store.inbox.add_number(account.id, number, c.clock())
    except NumberTaken as exc:
        raise Refused(f"{exc}; remove it from that account first") from None


async def _update(c: Console, username: str, **values: object) -> None:
    if await c.store.update_account(username, **values) is None:
        raise Refused(f"no account named {username!r}")
