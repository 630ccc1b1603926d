"""Messages (docs/console.md, pages 2 and 3): search by message id, recipient,
customerMessageId, message list, account, status, channel, connector and time;
newest first, 50 a page by keyset; the result as CSV (up to 100,000 rows); and one
message's whole timeline — its story (each status, hand-over with its route and
connector, receipt with the carrier's words, fallback step and failed attempt, the
final status's reason, cost and carrier cost), the parts carriers took, every webhook
attempt, and the status document exactly as the API answers it."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from batgate.console.context import HEADERS, Console
from batgate.domain.messages import CHANNEL_OF, Channel
from batgate.domain.notifications import rfc3339
from batgate.domain.pricing import from_micros
from batgate.domain.status import DeliveryStatus
from batgate.store.message_search import Filters, Found

PAGE = 50
CSV_ROWS = 100_000
FIELDS = ("id", "to", "cid", "list", "account", "status", "channel", "connector", "since", "until")
_CSV_COLUMNS = (
    "messageId",
    "createdAt",
    "account",
    "to",
    "type",
    "deliverystatus",
    "connector",
    "customerMessageId",
    "messagelistId",
    "billAmount",
    "billCurrency",
)


def routes(c: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/messages", include_in_schema=False)
    async def search(request: Request) -> Response:
        session = await c.session(request)
        query = {k: request.query_params.get(k, "").strip() for k in FIELDS}
        filters = await _filters(c, query)
        after = _cursor(request.query_params.get("after", ""))
        found = [] if filters is None else await c.store.search.search(filters, after, PAGE + 1)
        more = len(found) > PAGE
        found = found[:PAGE]
        cursor = f"{found[-1].created_at!r}_{found[-1].id}" if more and found else None
        return c.page(
            request,
            "messages.html",
            session,
            page="messages",
            query=query,
            found=found,
            cursor=cursor,
            searched=any(query.values()),
            statuses=[s.value for s in DeliveryStatus],
            channels=[ch.value for ch in Channel],
            csv_query=request.url.query,
        )

    @router.get("/messages.csv", include_in_schema=False)
    async def export(request: Request) -> Response:
        await c.session(request)
        query = {k: request.query_params.get(k, "").strip() for k in FIELDS}
        filters = await _filters(c, query)
        rows = c.store.search.every(filters, CSV_ROWS) if filters is not None else _none()
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        headers = HEADERS | {"Content-Disposition": f'attachment; filename="messages-{stamp}.csv"'}
        return StreamingResponse(_csv(rows), media_type="text/csv", headers=headers)

    @router.get("/messages/{message_id}", include_in_schema=False)
    async def one(request: Request, message_id: str) -> Response:
        session = await c.session(request)
        record = await c.store.get_message(message_id)
        if record is None:
            response = c.page(
                request,
                "message.html",
                session,
                page="messages",
                record=None,
                message_id=message_id,
            )
            response.status_code = 404
            return response
        found = await c.store.status_document(message_id)
        document = orjson.loads(found[1]) if found else {}
        account = await c.store.account_by_id(record.account_id)
        return c.page(
            request,
            "message.html",
            session,
            page="messages",
            record=record,
            message_id=message_id,
            account=account.username if account else record.account_id,
            document=orjson.dumps(document, option=orjson.OPT_INDENT_2).decode(),
            status=document.get("deliverystatus"),
            story=await c.store.story(message_id),
            parts=await c.store.search.parts(message_id),
            attempts=await c.store.search.attempts(message_id),
            bill=_bill(record.bill_micros, record.bill_currency),
        )

    return router


async def _filters(c: Console, q: Mapping[str, str]) -> Filters | None:
    """The search's filters; None when they can match nothing (an unknown account)."""
    account_id = None
    if q["account"]:
        account = await c.store.account_by_username(q["account"])
        if account is None:
            return None
        account_id = account.id
    recipient = q["to"]
    if recipient and not recipient.startswith("+") and recipient.isdigit():
        recipient = "+" + recipient  # as stored: E.164
    types = tuple(t.value for t, ch in CHANNEL_OF.items() if ch.value == q["channel"])
    return Filters(
        message_id=q["id"] or None,
        recipient=recipient or None,
        customer_message_id=q["cid"] or None,
        messagelist_id=int(q["list"]) if q["list"].isdigit() else None,
        account_id=account_id,
        status=q["status"] or None,
        channel_types=types,
        connector=q["connector"] or None,
        since=_time(q["since"]),
        until=_time(q["until"]),
    )


def _time(value: str) -> float | None:
    """A time the form gave (`2026-12-07T10:30`, read as UTC), or None."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _cursor(value: str) -> tuple[float, str] | None:
    at, _, message_id = value.partition("_")
    try:
        return (float(at), message_id) if message_id.isalnum() else None
    except ValueError:
        return None


def _bill(micros: int | None, currency: str) -> str:
    return "" if micros is None else f"{from_micros(micros)} {currency}"


async def _none() -> AsyncIterator[Found]:
    return
    yield  # an async generator of nothing


async def _csv(rows: AsyncIterator[Found]) -> AsyncIterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS)
    count = 0
    async for r in rows:
        writer.writerow(_csv_row(r))
        count += 1
        if count % 500 == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


def _cell(value: str) -> str:
    """A customer's text as a CSV cell a spreadsheet will not run: one that starts like
    a formula (`=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_row(r: Found) -> list[Any]:
    return [
        r.id,
        rfc3339(r.created_at),
        _cell(r.username),
        r.recipient,
        r.type,
        r.status,
        r.connector or "",
        _cell(r.customer_message_id or ""),
        r.messagelist_id,
        "" if r.bill_micros is None else from_micros(r.bill_micros),
        r.bill_currency,
    ]
