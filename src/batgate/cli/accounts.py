"""`batgate accounts …`: create, list, rotate keys, disable and enable accounts."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column

from batgate.cli.common import (
    DatabaseUrl,
    emit,
    fail,
    open_store,
    run,
    settings_for,
    with_store,
)
from batgate.cli.numbers import add_number, numbers, remove_number
from batgate.cli.output import table, text_column
from batgate.domain.account_rules import account_problem, rate_limit_problem
from batgate.domain.credentials import hash_password, key_hash, new_api_key, new_webhook_secret
from batgate.domain.records import Account
from batgate.domain.urls import is_http_url
from batgate.store.manager import DuplicateAccountError

app = typer.Typer(
    help="Manage accounts (API keys, passwords, webhook settings, owned numbers).",
    no_args_is_help=True,
)
app.command("add-number")(add_number)
app.command("remove-number")(remove_number)
app.command("numbers")(numbers)


@app.command()
def create(
    username: str,
    password: Annotated[str | None, typer.Option(help="Password for HTTP Basic login.")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="Where status webhooks go.")] = None,
    currency: Annotated[
        str | None,
        typer.Option(help="Billing currency (ISO 4217); default: the default_currency setting."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an account; prints {"username", "apiKey", "webhookSecret"} as JSON."""
    settings = settings_for(database_url)
    currency = (currency or settings.default_currency).upper()
    problem = account_problem(username, currency, webhook_url, settings.fx)
    if problem is not None:
        fail(problem)
    api_key, secret = new_api_key(), new_webhook_secret()

    async def main() -> None:
        async with open_store(settings) as store:
            try:
                await store.create_account(
                    username,
                    key_hash(api_key),
                    hash_password(password) if password else None,
                    webhook_url,
                    secret,
                    currency,
                )
            except DuplicateAccountError:
                fail(f"an account named {username!r} exists already")

    run(main)
    emit({"username": username, "apiKey": api_key, "webhookSecret": secret})


@app.command("list")
def list_(
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List accounts (never their secrets)."""
    settings = settings_for(database_url)

    found = with_store(settings, lambda store: store.list_accounts())
    if json:
        for a in found:
            emit(_public(a))
        return
    out = table(
        Column("username", no_wrap=True),
        "currency",
        text_column("webhook URL"),
        "password",
        "disabled",
    )
    for a in found:
        url = a.webhook_url or "-"
        if a.webhook_url and not a.webhook_enabled:
            url += " (disabled)"
        out.add_row(
            a.username,
            a.currency,
            url,
            "yes" if a.password_hash else "no",
            "yes" if a.disabled else "no",
        )
    Console().print(out)


@app.command("rotate-key")
def rotate_key(username: str, database_url: DatabaseUrl = None) -> None:
    """Issue a new API key (the old one stops working); prints it as JSON."""
    api_key = new_api_key()
    _update(database_url, username, api_key_hash=key_hash(api_key))
    emit({"username": username, "apiKey": api_key})


@app.command()
def disable(username: str, database_url: DatabaseUrl = None) -> None:
    """Refuse the account's requests (401) from now on; its messages stay."""
    _update(database_url, username, disabled=True)
    emit({"username": username, "disabled": True})


@app.command()
def enable(username: str, database_url: DatabaseUrl = None) -> None:
    """Accept the account's requests again."""
    _update(database_url, username, disabled=False)
    emit({"username": username, "disabled": False})


@app.command("set-webhook")
def set_webhook(
    username: str,
    url: Annotated[str | None, typer.Argument(help="The webhook URL (http or https).")] = None,
    disable: Annotated[bool, typer.Option("--disable", help="Stop sending webhooks.")] = False,
    enable: Annotated[
        bool, typer.Option("--enable", help="Send again (e.g. after the endpoint answered 410).")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Set the account's webhook URL, or disable / re-enable its endpoint."""
    if disable and enable:
        fail("use either --disable or --enable, not both")
    if url is None and not (disable or enable):
        fail("give a URL, --disable or --enable")
    values: dict[str, object] = {}
    if url is not None:
        if not is_http_url(url):
            fail(f"the webhook URL must be an absolute http(s) URL, got {url!r}")
        values.update(webhook_url=url, webhook_enabled=True, webhook_disabled_reason=None)
    if disable:
        values.update(webhook_enabled=False, webhook_disabled_reason="disabled by an operator")
    if enable:
        values.update(webhook_enabled=True, webhook_disabled_reason=None)
    account = _update(database_url, username, **values)
    emit(
        {
            "username": username,
            "webhookUrl": account.webhook_url,
            "webhookEnabled": account.webhook_enabled,
        }
    )


@app.command("set-rate-limit")
def set_rate_limit(
    username: str,
    rate: Annotated[
        float | None, typer.Argument(help="Requests a second (the account's own limit).")
    ] = None,
    burst: Annotated[
        int | None, typer.Option(help="Requests at once; default twice the rate.")
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Back to the gateway's rate_limit.*.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Give the account a rate limit of its own, or back the gateway's (`--default`);
    running processes take it up within `auth_cache_seconds`."""
    if default == (rate is not None):
        fail("give a rate (requests a second) or --default")
    problem = rate_limit_problem(rate, burst)
    if problem is not None:
        fail(problem)
    account = _update(database_url, username, rate_limit=rate, rate_burst=burst)
    emit({"username": username, "rateLimit": account.rate_limit, "rateBurst": account.rate_burst})


@app.command("rotate-webhook-secret")
def rotate_webhook_secret(username: str, database_url: DatabaseUrl = None) -> None:
    """Issue a new webhook secret; the old one keeps signing too for 24 hours."""
    settings = settings_for(database_url)
    secret = new_webhook_secret()

    async def main() -> Account | None:
        async with open_store(settings) as store:
            return await store.rotate_webhook_secret(
                username, secret, time.time() + settings.webhooks.secret_overlap
            )

    if run(main) is None:
        fail(f"no account named {username!r}")
    emit({"username": username, "webhookSecret": secret})


def _update(database_url: str | None, username: str, **values: object) -> Account:
    settings = settings_for(database_url)

    account = with_store(settings, lambda store: store.update_account(username, **values))
    if account is None:
        fail(f"no account named {username!r}")
    return account


def _public(a: Account) -> dict[str, object]:
    return {
        "username": a.username,
        "currency": a.currency,
        "webhookUrl": a.webhook_url,
        "webhookEnabled": a.webhook_enabled,
        "hasPassword": a.password_hash is not None,
        "disabled": a.disabled,
        "rateLimit": a.rate_limit,
        "rateBurst": a.rate_burst,
    }
