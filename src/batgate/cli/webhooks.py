"""`batgate webhooks …`: see the outbox and send failed events again."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from batgate.cli.common import DatabaseUrl, emit, fail, settings_for, with_store
from batgate.cli.output import (
    id_column,
    number_column,
    plural,
    status_column,
    table,
    with_detail,
)
from batgate.domain.notifications import EventView, rfc3339

app = typer.Typer(help="Webhook events: list them, retry failed ones.", no_args_is_help=True)


@app.command("list")
def list_(
    account: Annotated[str | None, typer.Option(help="Only this account's events.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only events that gave up.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Webhook events, newest first, with their delivery state and last attempt."""
    settings = settings_for(database_url)

    events = with_store(settings, lambda store: store.outbox.events(account, failed, limit))
    if json:
        for e in events:
            emit(_public(e))
        return
    if not events:
        typer.echo("no webhook events" + (" that gave up" if failed else ""))
        return
    Console().print(_events_table(events, time.time()))


def _events_table(events: list[EventView], now: float) -> Table:
    """One event a row; its account, attempts, last answer and next try under its id."""
    out = table(number_column("id"), id_column("message"), status_column(), Column("state"))
    for e in events:
        out.add_row(str(e.id), with_detail(e.message_id, _attempts_line(e, now)), e.status, e.state)
    return out


@app.command()
def retry(
    event_id: Annotated[int | None, typer.Argument(help="The event's id (from `list`).")] = None,
    all_failed: Annotated[
        bool, typer.Option("--all-failed", help="Every event that gave up.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Send failed events again, from the start of the retry schedule."""
    if (event_id is None) == (not all_failed):
        fail("give an event id or --all-failed")
    settings = settings_for(database_url)

    count = with_store(settings, lambda store: store.outbox.retry(event_id, time.time()))
    if event_id is not None and count == 0:
        fail(f"no failed event with id {event_id}")
    emit({"retried": count})


def _attempts_line(e: EventView, now: float) -> str:
    """`alice · 3 attempts · last 503 · next in 4 s`."""
    words = [e.username, plural(e.attempts, "attempt")]
    last = str(e.last_status or "") or e.last_error
    if last:
        words.append(f"last {last}")
    if e.state == "pending" and e.next_attempt_at:
        words.append(f"next in {max(0, round(e.next_attempt_at - now))} s")
    return " · ".join(words)


def _public(e: EventView) -> dict[str, object]:
    return {
        "id": e.id,
        "webhookId": e.webhook_id,
        "account": e.username,
        "messageId": e.message_id,
        "deliverystatus": e.status,
        "state": e.state,
        "attempts": e.attempts,
        "at": rfc3339(e.at),
        "nextAttemptAt": rfc3339(e.next_attempt_at) if e.next_attempt_at else None,
        "lastStatus": e.last_status,
        "lastError": e.last_error,
        "url": e.url,
    }
