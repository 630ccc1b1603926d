"""`batgate inbound`: the operator's view of inbound messages (SPEC §10).

`--unrouted` lists those no account owns (their recipient is no account's number:
`batgate accounts add-number` routes the next ones), `--account USERNAME` one
account's, both oldest first and paged with `--after`; with neither, the latest of
all, newest first, with the account each went to.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from batgate.cli.common import DatabaseUrl, account_named, emit, fail, open_store, run, settings_for
from batgate.cli.output import table, text_column
from batgate.domain.inbound import StoredInbound, inbound_document
from batgate.domain.notifications import rfc3339

_SHOWN = 60  # characters of a text in the table


def inbound(
    unrouted: Annotated[
        bool, typer.Option("--unrouted", help="Only those no account owns.")
    ] = False,
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account's (its username).")
    ] = None,
    after: Annotated[
        int, typer.Option(min=0, help="Start after this id (the `more:` hint says which).")
    ] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Inbound messages: the unrouted, one account's, or the latest of all."""
    if unrouted and account is not None:
        fail("use either --unrouted or --account, not both")
    settings = settings_for(database_url)

    async def main() -> list[tuple[StoredInbound, str | None]]:
        async with open_store(settings) as store:
            if account is not None:
                owner = await account_named(store, account)
                return [(m, account) for m in await store.inbox.page(owner.id, after, limit)]
            if unrouted:
                return [(m, None) for m in await store.inbox.page(None, after, limit)]
            return await store.inbox.latest(limit)

    found = run(main)
    paged = unrouted or account is not None
    if json:
        for m, username in found:
            emit({**inbound_document(m), "account": username})
    elif not found:
        typer.echo("no inbound messages" + (" unrouted" if unrouted else ""))
    else:
        Console().print(_table(found))
    if paged and len(found) == limit:
        which = "--unrouted" if unrouted else f"--account {account}"
        typer.echo(f"more: batgate inbound {which} --after {found[-1][0].id}")


def _table(found: list[tuple[StoredInbound, str | None]]) -> Table:
    out = table(
        Column("id", justify="right"),
        "received (UTC)",
        Column("from", no_wrap=True),
        Column("to", no_wrap=True),
        "account",
        text_column("text"),
        Column("parts", justify="right"),
    )
    for m, username in found:
        text = m.text if len(m.text) <= _SHOWN else m.text[: _SHOWN - 1] + "…"
        parts = f"{m.parts}" + (" (incomplete)" if m.incomplete else "")
        out.add_row(
            str(m.id), rfc3339(m.received_at), m.sender, m.recipient, username or "-", text, parts
        )
    return out
