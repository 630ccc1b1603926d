"""`batgate messages …`: a message as the operator sees it, and why it ended as it did."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console

from batgate.cli.common import DatabaseUrl, emit, fail, settings_for, with_store
from batgate.cli.output import status_column, table, text_column
from batgate.domain.records import StoryLine
from batgate.store.manager import Store

app = typer.Typer(help="Messages: what happened to one, and why.", no_args_is_help=True)


@app.command()
def show(
    message_id: Annotated[str, typer.Argument(help="The messageId.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """A message's status document (as the API answers it) and its story: each status
    it entered, each attempt that failed and each step that ended, and why."""
    settings = settings_for(database_url)

    async def read(store: Store) -> tuple[tuple[int, bytes] | None, list[StoryLine]]:
        return await store.status_document(message_id), await store.story(message_id)

    found, story = with_store(settings, read)
    if found is None:
        fail(f"no message with id {message_id!r}")
    account_id, document = found
    status = json.loads(document)
    if as_json:
        emit({"accountId": account_id, "status": status, "story": [_line(s) for s in story]})
        return
    out = Console()
    facts = table("", text_column(""))
    for key in ("messageId", "deliverystatus", "type", "to", "partscount", "cost"):
        if key in status:
            facts.add_row(key, str(status[key]))
    for key in ("messagelistId", "customerMessageId", "extendedStatuses"):
        if key in status:
            facts.add_row(key, json.dumps(status[key], ensure_ascii=False))
    facts.add_row("account", str(account_id))
    out.print(facts)
    lines = table("at (UTC)", status_column("what"), text_column("why"), title="\nstory")
    for line in story:
        where = f"{line.channel} (step {line.step})" if line.channel else f"step {line.step}"
        what = line.status or where
        lines.add_row(_when(line.at), what, line.reason or "")
    out.print(lines)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _line(line: StoryLine) -> dict[str, Any]:
    doc: dict[str, Any] = {"at": datetime.fromtimestamp(line.at, UTC).isoformat()}
    if line.status is not None:
        doc["status"] = line.status
    else:
        doc["step"] = line.step
        if line.channel is not None:
            doc["channel"] = line.channel
    doc["reason"] = line.reason
    return doc
