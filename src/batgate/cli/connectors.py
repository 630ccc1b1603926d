"""`batgate connectors …`: every connector's state across the running processes;
drain one (routes skip it) and enable it again, in every process within seconds."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from batgate.cli.common import DatabaseUrl, emit, fail, settings_for, with_store
from batgate.cli.output import number_column, plural, table, text_column, with_detail
from batgate.domain.connectors import ConnectorView
from batgate.domain.notifications import rfc3339
from batgate.engine.connector_board import configured, connector_views, switch_connector
from batgate.store.manager import Store

app = typer.Typer(
    help="Connectors: their state in every running process; drain and enable them.",
    invoke_without_command=True,
)

Json = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


@app.callback()
def _default(ctx: typer.Context, json: Json = False, database_url: DatabaseUrl = None) -> None:
    """Connectors: their state in every running process (`list`, the default); drain
    one so that routes skip it, enable it again."""
    if ctx.invoked_subcommand is None:
        list_(json=json, database_url=database_url)


@app.command("list")
def list_(json: Json = False, database_url: DatabaseUrl = None) -> None:
    """Each connector: state, bound links, hand-overs in flight, sent and errors in the
    last minute, the last error — summed over the processes that reported lately."""
    settings = settings_for(database_url)
    now = time.time()

    found = with_store(settings, lambda store: connector_views(store, settings, now))
    if json:
        for view in found:
            emit(_public(view))
        return
    Console().print(_table(found, now))


@app.command()
def drain(
    name: Annotated[str, typer.Argument(help="The connector's name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Routes skip the connector from now on (in every process within
    `dispatcher.connector_report_seconds`); what it holds finishes."""
    _switch(name, True, database_url)
    typer.echo(f"drained {name}: routes skip it; `batgate connectors enable {name}` to undo")


@app.command()
def enable(
    name: Annotated[str, typer.Argument(help="The connector's name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Routes use the connector again."""
    _switch(name, False, database_url)
    typer.echo(f"enabled {name}")


def _switch(name: str, drained: bool, database_url: str | None) -> None:
    settings = settings_for(database_url)

    def switch(store: Store) -> Awaitable[bool]:
        return switch_connector(store, settings, name, drained, time.time())

    if not with_store(settings, switch):
        declared = ", ".join(sorted(configured(settings)))
        fail(f"no connector named {name!r} (declared: {declared})", 2)


def _table(found: list[ConnectorView], now: float) -> Table:
    out = table(
        Column("connector", no_wrap=True),
        Column("state", no_wrap=True),
        number_column("links"),
        number_column("in flight"),
        number_column("sent/min"),
        number_column("errors/min"),
        text_column("last error"),
    )
    for v in found:
        error = ""
        if v.last_error is not None and v.last_error_at is not None:
            error = f"{_ago(now - v.last_error_at)} ago: {v.last_error}"
        processes = plural(v.processes, "process", "processes") if v.processes else ""
        state = with_detail(v.state, processes)
        out.add_row(
            v.name,
            state,
            "" if v.links is None else str(v.links),
            str(v.in_flight),
            str(v.sent_minute),
            str(v.errors_minute),
            error,
        )
    return out


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


def _public(v: ConnectorView) -> dict[str, object]:
    return {
        "name": v.name,
        "state": v.state,
        "drained": v.drained,
        "processes": v.processes,
        "links": v.links,
        "inFlight": v.in_flight,
        "sentPerMinute": v.sent_minute,
        "errorsPerMinute": v.errors_minute,
        "lastError": v.last_error,
        "lastErrorAt": None if v.last_error_at is None else rfc3339(v.last_error_at),
    }
