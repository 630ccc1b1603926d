"""`batgate suppressions …`: an account's suppression list (opt-outs, SPEC §11).

The account is named by its username, as in `batgate accounts …`. Numbers are
E.164 (`+` and 8-15 digits), exactly as a send's `to` is stored. A CSV file for
`import` has one number per row in its first column (further columns are ignored,
so that an export can be imported again), an optional header row (a first row
without digits), and may start with a byte-order mark; the rules are
domain.optout's. Its bad rows are reported by line number on stderr and the good
ones imported, all in one transaction; the exit status is then 1.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column

from batgate.cli.common import (
    DatabaseUrl,
    account_named,
    emit,
    err,
    fail,
    open_store,
    run,
    settings_for,
)
from batgate.cli.output import plural, table
from batgate.domain.notifications import rfc3339
from batgate.domain.optout import CsvNumbers, Source, Suppression, number_problem, read_csv_numbers

app = typer.Typer(
    help="An account's suppression list: numbers its messages may not go to (opt-outs).",
    no_args_is_help=True,
)

Username = Annotated[str, typer.Argument(help="The account's username.")]
_EXPORT_COLUMNS = ("number", "source", "createdAt")


def _number(value: str) -> str:
    problem = number_problem(value)
    if problem is not None:
        fail(problem)
    return value


def _public(entry: Suppression) -> dict[str, object]:
    return {"number": entry.number, "source": entry.source, "createdAt": rfc3339(entry.created_at)}


@app.command("list")
def list_(
    username: Username,
    after: Annotated[
        str | None, typer.Option(help="Start after this number (the `more:` hint says which).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, in number order.")] = 100,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """The account's suppressed numbers, in number order (all of them: `export`)."""
    settings = settings_for(database_url)
    start = None if after is None else _number(after)

    async def main() -> tuple[list[Suppression], bool]:
        async with open_store(settings) as store:
            account = await account_named(store, username)
            return await store.suppressions.page(account.id, after=start, limit=limit)

    entries, more = run(main)
    if json:
        for entry in entries:
            emit(_public(entry))
        return
    if not entries:
        typer.echo(f"no suppressed numbers for {username}" + (f" after {after}" if after else ""))
        return
    out = table(Column("number", no_wrap=True), "source", "since (UTC)")
    for entry in entries:
        out.add_row(entry.number, entry.source, rfc3339(entry.created_at))
    Console().print(out)
    if more:
        typer.echo(f"more: batgate suppressions list {username} --after {entries[-1].number}")


@app.command()
def add(
    username: Username,
    numbers: Annotated[list[str], typer.Argument(help="E.164 numbers, e.g. +380501234567.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Suppress numbers for the account; prints {"username", "added", "alreadyListed"}.

    A number listed already keeps its source and time.
    """
    settings = settings_for(database_url)
    wanted = list(dict.fromkeys(_number(n) for n in numbers))

    async def main() -> set[str]:
        async with open_store(settings) as store:
            account = await account_named(store, username)
            return await store.suppressions.add(account.id, wanted, Source.CLI, time.time())

    added = run(main)
    emit({"username": username, "added": len(added), "alreadyListed": len(wanted) - len(added)})


@app.command()
def remove(
    username: Username,
    number: Annotated[str, typer.Argument(help="The E.164 number to take off the list.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Take a number off the account's list: the account may send to it again."""
    settings = settings_for(database_url)
    _number(number)

    async def main() -> Suppression | None:
        async with open_store(settings) as store:
            account = await account_named(store, username)
            return await store.suppressions.remove(account.id, number)

    removed = run(main)
    if removed is None:
        fail(f"{number} is not on {username}'s suppression list")
    emit({"username": username, "removed": _public(removed)})


@app.command("import")
def import_(
    username: Username,
    file: Annotated[
        Path, typer.Argument(help="CSV: one number per row, first column; a header row is fine.")
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Suppress every number of a CSV file (one a row, first column; header optional).

    Prints {"username", "rows", "added", "alreadyListed", "badRows"} (a number repeated
    in the file counts once in "added" or "alreadyListed"). Bad rows are named on stderr
    by line number and skipped, the good ones imported all the same; the exit status is
    then 1.
    """
    settings = settings_for(database_url)
    found = _read(file)

    async def main() -> set[str]:
        async with open_store(settings) as store:
            account = await account_named(store, username)
            return await store.suppressions.add(
                account.id, found.numbers, Source.IMPORT, time.time()
            )

    added = run(main) if found.numbers else set()
    for row in found.bad:
        err.print(f"{file.name}, line {row.line}: {row.problem}", soft_wrap=True, markup=False)
    emit(
        {
            "username": username,
            "rows": found.rows,
            "added": len(added),
            "alreadyListed": len(found.numbers) - len(added),
            "badRows": [
                {"line": row.line, "value": row.value, "problem": row.problem} for row in found.bad
            ],
        }
    )
    if found.bad:
        err.print(f"{plural(len(found.bad), 'bad row')} skipped", markup=False)
        raise typer.Exit(1)


def _read(file: Path) -> CsvNumbers:
    try:
        with file.open(encoding="utf-8-sig", newline="") as lines:
            return read_csv_numbers(lines)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        fail(f"{file} is not UTF-8 text: {exc.reason} at byte {exc.start}")


@app.command()
def export(username: Username, database_url: DatabaseUrl = None) -> None:
    """The account's whole list as CSV on stdout (`import` reads it back).

    A header row (number, source, createdAt), then one number a row, in number order.
    """
    settings = settings_for(database_url)
    writer = csv.writer(sys.stdout, lineterminator="\n")

    async def main() -> None:
        async with open_store(settings) as store:
            account = await account_named(store, username)
            writer.writerow(_EXPORT_COLUMNS)
            async for entry in store.suppressions.every(account.id):
                writer.writerow((entry.number, entry.source, rfc3339(entry.created_at)))

    run(main)
