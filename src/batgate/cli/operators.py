"""`batgate operators …`: the people who log in to the console (docs/console.md).

An operator is not an account: an account's API key never opens the console, and an
operator's session never reaches `/bat/*`. Passwords are stored with Argon2id, as
accounts' are; without `--password` it is asked for (twice) on a terminal, or read
from the first line of stdin otherwise (`… < password.txt`).
"""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer
from rich.console import Console

from batgate.cli.common import (
    DatabaseUrl,
    emit,
    fail,
    open_store,
    run,
    settings_for,
    with_store,
)
from batgate.cli.output import table
from batgate.domain.credentials import hash_password
from batgate.domain.notifications import rfc3339
from batgate.store.operators import DuplicateOperatorError, Operator

app = typer.Typer(help="Operators of the web console (/console).", no_args_is_help=True)

MIN_PASSWORD = 10
Name = Annotated[str, typer.Argument(help="The operator's login name.")]


def _password(given: str | None) -> str:
    if given is not None:
        password = given
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        fail(f"the password must be at least {MIN_PASSWORD} characters")
    return password


@app.command()
def create(
    name: Name,
    password: Annotated[
        str | None, typer.Option(help="Otherwise asked for, or read from stdin.")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an operator who may log in to the console; prints {"name", "created"}."""
    settings = settings_for(database_url)
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        fail("the name must be 1-64 characters without spaces")
    hashed = hash_password(_password(password))

    async def main() -> Operator:
        async with open_store(settings) as store:
            try:
                return await store.operators.create(name, hashed, time.time())
            except DuplicateOperatorError:
                fail(f"an operator named {name!r} exists already")

    run(main)
    emit({"name": name, "created": True})


@app.command("list")
def list_(
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """The operators (never their passwords)."""
    settings = settings_for(database_url)
    found = with_store(settings, lambda store: store.operators.every())
    if json:
        for o in found:
            emit({"name": o.name, "disabled": o.disabled, "createdAt": rfc3339(o.created_at)})
        return
    out = table("name", "disabled", "created (UTC)")
    for o in found:
        out.add_row(o.name, "yes" if o.disabled else "no", rfc3339(o.created_at))
    Console().print(out)


@app.command()
def disable(name: Name, database_url: DatabaseUrl = None) -> None:
    """Refuse the operator's logins; their open sessions end at once."""
    _switch(name, True, database_url)


@app.command()
def enable(name: Name, database_url: DatabaseUrl = None) -> None:
    """Let a disabled operator log in again."""
    _switch(name, False, database_url)


def _switch(name: str, disabled: bool, database_url: str | None) -> None:
    settings = settings_for(database_url)
    if not with_store(settings, lambda store: store.operators.set_disabled(name, disabled)):
        fail(f"no operator named {name!r}")
    emit({"name": name, "disabled": disabled})
