"""`GET /bat/messagelist/{id}`: a batgate extension, the status of one message list.

The summary of the whole list (counts per status, cost, delivery rate) on every
page, and one page of its messages' status documents in id order. Paging is by
keyset: the cursor is the last message id of the previous page, so a page costs
the same however deep it is, and messages never shift between pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from batgate.api.errors import ApiError, not_found
from batgate.api.status import StatusService
from batgate.domain.checks import is_digits
from batgate.domain.pricing import from_micros
from batgate.domain.records import Account
from batgate.domain.status import DeliveryStatus
from batgate.store.manager import Store

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MAX_CURSOR = 32  # the length of the messages.id column


async def messagelist_status(
    store: Store,
    statuses: StatusService,
    account: Account,
    messagelist_id: str,
    query: Mapping[str, str],
) -> bytes:
    """The JSON answer; 422 for a bad `limit` or `cursor`, 404 for an unknown or
    another account's list."""
    limit = page_limit(query.get("limit"))
    cursor = _cursor(query.get("cursor"))
    page = None
    if is_digits(messagelist_id) and len(messagelist_id) < 19:
        page = await store.messagelist_page(
            account.id, int(messagelist_id), after=cursor, limit=limit
        )
    if page is None:
        raise not_found(f"no message list with id {messagelist_id[:32]!r}")
    answer = summary(int(messagelist_id), page.counts, account.currency)
    answer["messages"] = statuses.documents(page.records)
    answer["nextCursor"] = page.records[-1].id if page.more else None
    return orjson.dumps(answer)


def summary(
    messagelist_id: int, by_status: Mapping[str, tuple[int, int]], currency: str
) -> dict[str, Any]:
    """Counts per status (every status, 0 included), total billed, share delivered."""
    counts = {status.value: by_status.get(status.value, (0, 0))[0] for status in DeliveryStatus}
    total = sum(counts.values())
    delivered = counts[DeliveryStatus.DELIVERED.value]
    return {
        "messagelistId": messagelist_id,
        "total": total,
        "counts": counts,
        "cost": from_micros(sum(micros for _, micros in by_status.values())),
        "currency": currency,
        "deliveryRate": delivered / total if total else 0.0,
    }


def page_limit(value: str | None) -> int:
    """A page's `limit`: absent or empty is the default; else 1 to MAX_LIMIT (422)."""
    if not value:  # absent or empty: the default
        return DEFAULT_LIMIT
    if not (
        value.isascii() and value.isdigit() and len(value) <= 4 and 1 <= int(value) <= MAX_LIMIT
    ):
        raise _unprocessable(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(value)


def _cursor(value: str | None) -> str | None:
    """A cursor is what `nextCursor` was: a message id (letters and digits)."""
    if not value:  # absent or empty: the first page
        return None
    if not (value.isascii() and value.isalnum() and len(value) <= _MAX_CURSOR):
        raise _unprocessable("cursor must be the nextCursor of a previous page")
    return value


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, "INVALID_REQUEST", message)
