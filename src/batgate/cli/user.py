"""The `batgate` commands for users of a gateway: send, status, wait, report, cancel, inbox.

They speak HTTP through the SDK (`batgate.client`), so they work against any
batgate or SMSBAT-compatible endpoint (`report`, `cancel`, `inbox` and `send --at`
need batgate). Configured by `--url` / `BATGATE_URL` and `--api-key` /
`BATGATE_API_KEY`.

Exit codes: 0 done; 1 an error (one line on stderr), or a message was rejected, not
found or not cancelled; 2 wrong usage; 3 `wait` timed out; 130 interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from batgate.cli.batch import (
    Batch,
    BatchError,
    RowResult,
    State,
    load_batch,
    messagelist_ids,
    open_state,
    results_of,
    send_batch,
)
from batgate.cli.common import err, fail
from batgate.cli.output import (
    id_column,
    money,
    number_column,
    plural,
    status_column,
    table,
    text_column,
    with_detail,
)
from batgate.client import (
    AuthenticationError,
    BatgateError,
    Client,
    DeliveryTimeoutError,
    InboundMessage,
    InboundPage,
    MessagelistReport,
    MessageStatus,
    NetworkError,
    NotCancellableError,
    NotFoundError,
    Retries,
    SendResult,
    StatusResult,
)
from batgate.client.core import DEFAULT_URL, check_idempotency_key
from batgate.client.messages import send_time

out = Console(highlight=False)

Url = Annotated[str, typer.Option("--url", envvar="BATGATE_URL", help="The gateway's base URL.")]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="BATGATE_API_KEY", help="Your API key.", show_default=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Ids = Annotated[list[str], typer.Argument(help="Message ids.", show_default=False)]

EXIT_ERROR, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 1, 2, 3, 130

# Fewer, shorter retries than the SDK's default: a person is waiting (~2 s in all).
_RETRIES = Retries.exponential(retries=3, first=0.25)


@contextmanager
def _client(
    url: str, api_key: str | None, resume_hint: Callable[[], str] = str
) -> Iterator[Client]:
    """A client whose errors end the command with one line on stderr."""
    if not api_key:
        fail("no API key: pass --api-key or set BATGATE_API_KEY", EXIT_USAGE)
    try:
        with Client(url, api_key=api_key, retries=_RETRIES) as client:
            yield client
    except AuthenticationError as exc:
        fail(f"authentication failed ({exc.code or exc.status_code}): check the API key")
    except NetworkError as exc:
        fail(f"cannot reach {url}: {exc.message}{resume_hint()}")
    except BatgateError as exc:
        fail(f"{exc}{resume_hint()}")
    except KeyboardInterrupt:
        err.print(Text(f"interrupted{resume_hint()}"), soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _emit_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))


# -- send --------------------------------------------------------------------------------


To = Annotated[str | None, typer.Option("--to", help="Recipient (E.164).")]
MessageText = Annotated[str | None, typer.Option("--text", help="Message text.")]
MessageTypeOption = Annotated[
    str, typer.Option("--type", help="Message type (sms, viber_promo, …); the CSV default.")
]
Sender = Annotated[
    str | None, typer.Option("--from", envvar="BATGATE_SENDER", help="Sender; the CSV default.")
]
CustomerId = Annotated[
    str | None, typer.Option("--customer-message-id", help="Your own id of the message.")
]
CsvFile = Annotated[
    Path | None,
    typer.Option(
        "--csv",
        exists=True,
        dir_okay=False,
        help="CSV with columns to,text[,type,from,customerMessageId]; resumable.",
    ),
]
ChunkSize = Annotated[int, typer.Option(min=1, max=1000, help="Messages per request (--csv).")]
BatchId = Annotated[str, typer.Option(help="Name a new send of a CSV sent before (--csv).")]
IdempotencyKey = Annotated[str | None, typer.Option(help="Make a retried send safe (batgate).")]
SendAt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="Send later: an RFC 3339 time with an offset, at most 35 days ahead, "
        "e.g. 2026-12-24T09:00:00+02:00 (batgate).",
        show_default=False,
    ),
]
Promotional = Annotated[
    bool, typer.Option("--promotional", help="A promotion: quiet hours hold it (batgate).")
]


def send(
    to: To = None,
    text: MessageText = None,
    type_: MessageTypeOption = "sms",
    sender: Sender = None,
    customer_message_id: CustomerId = None,
    csv_file: CsvFile = None,
    chunk_size: ChunkSize = 1000,
    batch_id: BatchId = "",
    idempotency_key: IdempotencyKey = None,
    at: SendAt = None,
    promotional: Promotional = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Send one message (--to, --text) or a CSV file (--csv) in chunks with a progress bar."""
    if csv_file is not None:
        if to is not None or text is not None:
            fail("give either --csv or --to/--text, not both", EXIT_USAGE)
        if at is not None or promotional:
            fail("--at and --promotional go with --to/--text, not --csv", EXIT_USAGE)
        batch = _load(csv_file, chunk_size, type_, sender, batch_id)
        _send_csv(batch, url, api_key, as_json)
        return
    if to is None or text is None:
        fail("give --to and --text (or --csv FILE)", EXIT_USAGE)
    if idempotency_key is not None:
        try:
            check_idempotency_key(idempotency_key)
        except ValueError as exc:
            fail(f"--idempotency-key: {exc}", EXIT_USAGE)
    message: dict[str, Any] = {"type": type_, "to": to, "from": sender, "text": text}
    if customer_message_id is not None:
        message["customerMessageId"] = customer_message_id
    if at is not None:
        message["sendAt"] = send_time(_moment(at))
    if promotional:
        message["promotional"] = True
    with _client(url, api_key) as client:
        result = client.send([message], idempotency_key=idempotency_key)
    if as_json:
        _emit_json(dict(result.raw))
    else:
        out.print(_send_table(result))
    for entry in result.rejected:
        fail(f"message rejected: {entry.error_message} ({entry.error_code})")


def _moment(text: str) -> datetime:
    """`--at`: an RFC 3339 time with its offset (a lower-case `t` or `z` as well)."""
    try:
        moment = datetime.fromisoformat(text.strip().upper())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        fail(
            f"--at: {text!r} is not an RFC 3339 time with an offset, "
            "e.g. 2026-12-24T09:00:00+02:00 or 2026-12-24T07:00:00Z",
            EXIT_USAGE,
        )
    return moment


def _send_table(result: SendResult) -> Table:
    out = table(
        Column("to", no_wrap=True),
        Column("status", no_wrap=True),
        id_column("messageId / error"),
        number_column("parts"),
        title=f"messagelist {result.messagelist_id}",
    )
    for e in result.entries:
        ident = e.message_id if e.accepted else f"{e.error_code}: {e.error_message}"
        out.add_row(e.to or "", e.status, ident or "", str(e.parts or ""))
    return out


def _load(
    path: Path, chunk_size: int, default_type: str, sender: str | None, batch_id: str
) -> Batch:
    try:
        return load_batch(
            path,
            chunk_size=chunk_size,
            default_type=default_type,
            default_sender=sender,
            batch_id=batch_id,
        )
    except (BatchError, OSError) as exc:
        fail(str(exc))


def _send_csv(batch: Batch, url: str, api_key: str | None, as_json: bool) -> None:
    try:
        state = open_state(batch)
    except (BatchError, OSError) as exc:
        fail(str(exc))
    if state.finished:
        notice = f"{batch.path.name} was sent already (see {state.path.name}); nothing sent."
        err.print(Text(f"{notice} Use --batch-id to send it again."), soft_wrap=True)
        _report_csv(batch, state, results_of(batch, state), as_json)
        return

    def hint() -> str:
        sent = f"{len(state.done)} of {batch.chunks} chunks sent"
        return f" — {sent}; run the same command again to resume"

    done_rows = sum(len(batch.chunk(i)) for i in state.done)
    progress = Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )
    try:
        with progress, _client(url, api_key, hint) as client:
            task = progress.add_task("send", total=len(batch.messages), completed=done_rows)
            rows = send_batch(client, batch, state, lambda n: progress.advance(task, n))
    except OSError as exc:
        fail(f"cannot write {state.path.name}: {exc}{hint()}")
    _report_csv(batch, state, rows, as_json)


def _report_csv(batch: Batch, state: State, rows: list[RowResult], as_json: bool) -> None:
    rejected = [r for r in rows if r.message_id is None]
    lists = messagelist_ids(state)
    if as_json:
        _emit_json(
            {
                "file": batch.path.name,
                "messages": len(rows),
                "accepted": len(rows) - len(rejected),
                "rejected": len(rejected),
                "messagelistIds": lists,
                "rows": [_row_json(r) for r in rows],
            }
        )
    else:
        summary = table(
            number_column("accepted"),
            number_column("rejected"),
            text_column("messagelist ids"),
            title=f"{batch.path.name}: {plural(len(rows), 'message')} "
            f"in {plural(len(lists), 'list')}",
        )
        summary.add_row(str(len(rows) - len(rejected)), str(len(rejected)), _ids_text(lists))
        out.print(summary)
        if rejected:
            out.print(_rejected_table(rejected))
    if rejected:
        fail(f"{len(rejected)} of {plural(len(rows), 'message')} rejected")


def _row_json(row: RowResult) -> dict[str, Any]:
    doc: dict[str, Any] = {"row": row.row, "to": row.to, "messageId": row.message_id}
    if row.message_id is None:
        doc["error"] = {"code": row.error_code, "message": row.error_message}
    return doc


def _ids_text(ids: Sequence[int]) -> str:
    return ", ".join(map(str, ids)) if len(ids) <= 6 else f"{ids[0]} … {ids[-1]}"


def _rejected_table(rejected: Sequence[RowResult], limit: int = 20) -> Table:
    title = "rejected" + (f" (first {limit} of {len(rejected)})" if len(rejected) > limit else "")
    out = table(
        number_column("row"),
        Column("to", no_wrap=True),
        Column("code", no_wrap=True),
        text_column("message"),
        title=title,
    )
    for r in rejected[:limit]:
        out.add_row(str(r.row), r.to, r.error_code or "", r.error_message or "")
    return out


# -- status and wait -----------------------------------------------------------------------


def status(
    ids: Ids, url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """Show the status of messages (a table, or --json)."""
    with _client(url, api_key) as client:
        results = client.statuses(ids)
        unreachable = next((r.error for r in results if isinstance(r.error, NetworkError)), None)
        if unreachable is not None:
            raise unreachable
    if as_json:
        _emit_json([_result_json(r) for r in results])
    else:
        out.print(_status_table([(r.message_id, r.status, r.error) for r in results]))
    failed = [r for r in results if not r.ok]
    if failed:
        fail(f"{len(failed)} of {plural(len(results), 'status', 'statuses')} could not be read")


def _result_json(result: StatusResult) -> dict[str, Any]:
    if result.status is not None:
        return dict(result.status.raw)
    error = result.error
    code = error.code if error is not None else None
    return {"messageId": result.message_id, "error": {"code": code, "message": str(error)}}


def wait(
    ids: Ids,
    timeout: Annotated[float, typer.Option(min=0, help="Give up after this many seconds.")] = 60,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Follow messages in a live table until every one is final (exit 3 on timeout)."""
    with _client(url, api_key) as client:
        try:
            if as_json:
                final = client.wait_for_all(ids, timeout=timeout)
            else:
                final = _wait_live(client, ids, timeout)
        except DeliveryTimeoutError as exc:
            last = list(exc.last_statuses.items())
            if as_json:
                _emit_json([dict(s.raw) if s else {"messageId": mid} for mid, s in last])
            elif not out.is_terminal:
                out.print(_status_table([(mid, s, None) for mid, s in last]))
            fail(f"timed out: {exc.message}", EXIT_TIMEOUT)
    if as_json:
        _emit_json([dict(s.raw) for s in final])


def _wait_live(client: Client, ids: Sequence[str], timeout: float) -> list[MessageStatus]:
    """wait_for_all with a table redrawn after every round (on a terminal; else drawn once)."""
    if not out.is_terminal:
        final = client.wait_for_all(ids, timeout=timeout)
        out.print(_status_table([(s.message_id, s, None) for s in final]))
        return final
    with Live(_status_table([(mid, None, None) for mid in ids]), console=out) as live:

        def show(statuses: list[MessageStatus]) -> None:
            live.update(_status_table([(s.message_id, s, None) for s in statuses]), refresh=True)

        return client.wait_for_all(ids, timeout=timeout, on_progress=show)


def _status_table(rows: Sequence[tuple[str, MessageStatus | None, BatgateError | None]]) -> Table:
    """One message a row; its list and its fallback chain's channels under its id. The
    cost's currency is in the column's title (answers without a fallback do not say it)."""
    currencies = {s.bill_currency for _, s, _ in rows if s is not None and s.bill_currency}
    title = f"cost ({currencies.pop()})" if len(currencies) == 1 else "cost"
    out = table(
        id_column("messageId"),
        status_column(),
        number_column("parts"),
        Column(title, justify="right", overflow="fold"),
    )
    for mid, s, error in rows:
        if s is None:
            ident = with_detail(mid, str(error), "red") if error else with_detail(mid, "")
            out.add_row(ident, "…" if error is None else "error", "", "")
            continue
        about = [f"list {s.messagelist_id}"] if s.messagelist_id is not None else []
        if s.extended_statuses:
            about.append(" → ".join(f"{c} {v}" for c, v in s.extended_statuses.items()))
        out.add_row(
            with_detail(mid, " · ".join(about)),
            s.status.value,
            str(s.parts_count or ""),
            money(s.cost, None),
        )
    return out


# -- report --------------------------------------------------------------------------------


ListMessages = Annotated[
    bool, typer.Option("--messages", help="Also every message's status, read page by page.")
]


def report(
    messagelist_id: Annotated[int, typer.Argument(help="The messagelistId of a send.")],
    messages: ListMessages = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Counts per status, delivery rate and total cost of a message list (batgate)."""
    with _client(url, api_key) as client:
        summary = client.report(messagelist_id)
        statuses = list(client.iter_messagelist(messagelist_id)) if messages else None
    if as_json:
        doc = {**summary.raw, "deliveryRate": round(summary.delivery_rate, 4)}
        if statuses is not None:
            doc["messages"] = [dict(s.raw) for s in statuses]
        _emit_json(doc)
        return
    out.print(_report_table(summary))
    if statuses is not None:
        out.print(_status_table([(s.message_id, s, None) for s in statuses]))


def _report_table(summary: MessagelistReport) -> Table:
    out = table(
        status_column(), number_column("messages"), title=f"messagelist {summary.messagelist_id}"
    )
    for name, count in summary.counts.items():
        out.add_row(name, str(count))
    out.add_section()
    out.add_row("total", str(summary.total))
    out.add_row("delivery rate", f"{summary.delivery_rate:.1%}")
    out.add_row("cost", money(summary.cost, summary.currency))
    return out


# -- cancel --------------------------------------------------------------------------------


def cancel(
    ids: Ids, url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """Cancel messages still scheduled (sent with --at); their new status (batgate)."""
    outcomes: list[tuple[str, MessageStatus | BatgateError]] = []
    with _client(url, api_key) as client:
        for message_id in ids:
            try:
                outcomes.append((message_id, client.cancel(message_id)))
            except (AuthenticationError, NetworkError):
                raise  # every id's error: one line, from _client
            except BatgateError as exc:
                outcomes.append((message_id, exc))
    if as_json:
        _emit_json([_cancel_json(mid, outcome) for mid, outcome in outcomes])
    else:
        rows = [
            (mid, o, None) if isinstance(o, MessageStatus) else (mid, None, o)
            for mid, o in outcomes
        ]
        out.print(_status_table(rows))
    failed = [(mid, o) for mid, o in outcomes if isinstance(o, BatgateError)]
    if failed:
        why = "; ".join(f"{mid}: {_refusal(error)}" for mid, error in failed)
        fail(f"{len(failed)} of {plural(len(outcomes), 'message')} not cancelled — {why}")


def _refusal(error: BatgateError) -> str:
    """Why one id was not cancelled, in a few words (the table has the server's message)."""
    if isinstance(error, NotCancellableError):
        return "no longer scheduled (NOT_CANCELLABLE)"
    if isinstance(error, NotFoundError):
        return f"not found ({error.code or error.status_code})"
    return str(error)


def _cancel_json(message_id: str, outcome: MessageStatus | BatgateError) -> dict[str, Any]:
    if isinstance(outcome, MessageStatus):
        return dict(outcome.raw)
    error = {"code": outcome.code, "message": outcome.message}
    return {"messageId": message_id, "error": error}


# -- inbox ---------------------------------------------------------------------------------

_SHOWN = 40  # characters of an inbound text in the table


def inbox(
    after: Annotated[
        str | None,
        typer.Option(
            help="Start after this cursor (the `more:` hint says which).", show_default=False
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    every: Annotated[bool, typer.Option("--all", help="Every message, page after page.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Your inbound messages, oldest first: replies and messages to your numbers (batgate)."""
    page: InboundPage | None = None  # with --all: every page, so no hint of a next one
    with _client(url, api_key) as client:
        if every:
            found = list(client.iter_inbound(after, page_size=1000))
        else:
            page = client.inbound(after, limit=limit)
            found = list(page.messages)
    if as_json:
        for m in found:
            typer.echo(json.dumps(dict(m.raw), ensure_ascii=False))
    elif found:
        out.print(_inbox_table(found))
    else:
        err.print(Text("no inbound messages" + (f" after {after}" if after else "")))
    if page is not None and page.next_cursor is not None:
        err.print(Text(f"more: batgate inbox --after {page.next_cursor}"), soft_wrap=True)


def _inbox_table(found: Sequence[InboundMessage]) -> Table:
    """One message a row, in 80 columns: under its sender the number it came to; under
    its text whether parts of it never came, and (↩) the message of yours it answers."""
    out = table(
        number_column("id"),
        Column("received (UTC)", no_wrap=True),
        Column("from", no_wrap=True),
        text_column("text"),
        number_column("parts"),
    )
    for m in found:
        text = " ".join(m.text.split())  # one line: no newlines or runs of spaces
        if len(text) > _SHOWN:
            text = text[: _SHOWN - 1].rstrip() + "…"
        about = ["incomplete"] if m.incomplete else []
        if m.in_reply_to:
            about.append(f"↩ {m.in_reply_to}")
        out.add_row(
            str(m.inbound_id),
            m.received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            with_detail(m.sender, f"to {m.to}"),
            with_detail(text, " · ".join(about)),
            str(m.parts),
        )
    return out
