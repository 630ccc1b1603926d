"""`batgate accounts add-number | remove-number | numbers`: the numbers (and sender
names) an account owns: inbound messages to them are the account's (SPEC §10)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

from batgate.cli.common import (
    DatabaseUrl,
    account_named,
    emit,
    fail,
    open_store,
    run,
    settings_for,
)
from batgate.cli.output import table
from batgate.domain.inbound import owned_number_problem
from batgate.domain.notifications import rfc3339
from batgate.store.inbound import NumberTaken, OwnedNumber

Username = Annotated[str, typer.Argument(help="The account's username.")]
Number = Annotated[
    str,
    typer.Argument(help="A number in E.164 form (+380501234567), a short code, or a sender name."),
]


def add_number(username: Username, number: Number, database_url: DatabaseUrl = None) -> None:
    """Make the account the owner of inbound messages to NUMBER_OR_SENDER."""
    settings = settings_for(database_url)
    problem = owned_number_problem(number)
    if problem is not None:
        fail(problem)

    async def main() -> bool:
        async with open_store(settings) as store:
            account = await account_named(store, username)
            try:
                return await store.inbox.add_number(account.id, number, time.time())
            except NumberTaken as exc:
                fail(f"{exc}; remove it from that account first")

    added = run(main)
    emit({"username": username, "number": number, "added": added})


def remove_number(username: Username, number: Number, database_url: DatabaseUrl = None) -> None:
    """The account no longer owns NUMBER_OR_SENDER: its inbound messages are unrouted."""
    settings = settings_for(database_url)

    async def main() -> bool:
        async with open_store(settings) as store:
            account = await account_named(store, username)
            return await store.inbox.remove_number(account.id, number)

    if not run(main):
        fail(f"{username} does not own {number}")
    emit({"username": username, "number": number, "removed": True})


def numbers(
    username: Username,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """The numbers and sender names the account owns."""
    settings = settings_for(database_url)

    async def main() -> list[OwnedNumber]:
        async with open_store(settings) as store:
            account = await account_named(store, username)
            return await store.inbox.numbers(account.id)

    owned = run(main)
    if json:
        for n in owned:
            emit({"number": n.number, "since": rfc3339(n.created_at)})
        return
    if not owned:
        typer.echo(f"{username} owns no numbers (batgate accounts add-number {username} NUMBER)")
        return
    out = table("number", "since (UTC)")
    for n in owned:
        out.add_row(n.number, rfc3339(n.created_at))
    Console().print(out)
