"""`GET /bat/inbound?after=CURSOR&limit=N` (SPEC §10): the account's inbound messages,
oldest first, by keyset: `nextCursor` is the last id of a page when more follow (null
on the last page), and `after` takes it back. A bad `limit` or `after`: 422, as the
other pages answer (api.reports)."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from batgate.api.errors import ApiError
from batgate.api.reports import page_limit
from batgate.domain.inbound import inbound_document
from batgate.domain.records import Account
from batgate.store.inbound import Inbox

_MAX_CURSOR_DIGITS = 19  # a 64-bit id


async def inbound_page(inbox: Inbox, account: Account, query: Mapping[str, str]) -> bytes:
    limit = page_limit(query.get("limit"))
    after = _after(query.get("after"))
    found = await inbox.page(account.id, after, limit + 1)
    page = found[:limit]
    more = len(found) > limit
    return orjson.dumps(
        {
            "messages": [inbound_document(m) for m in page],
            "nextCursor": str(page[-1].id) if more else None,
        }
    )


def _after(value: str | None) -> int:
    if not value:
        return 0
    if not (value.isascii() and value.isdigit() and len(value) <= _MAX_CURSOR_DIGITS):
        raise ApiError(422, "INVALID_REQUEST", "after must be the nextCursor of a previous page")
    return int(value)
