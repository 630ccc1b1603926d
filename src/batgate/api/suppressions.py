"""The account's suppression list (SPEC §11): the answers of `GET` and `POST
/bat/suppressions` and `DELETE /bat/suppressions/{number}` (routes in api/app.py,
described in api/schemas.py).

- `GET` pages the list in number order by keyset: `nextCursor` is the last number of
  the page without its `+` (a `+` in a query string reads as a space), and `after`
  takes it back (with or without the `+`).
- `POST {"numbers": [...]}` adds 1 to 1000 numbers, all or none: one number that is
  not in E.164 form refuses the whole request (422, naming each bad number and its
  index), so that a corrected request can simply be sent again. A number already
  listed stays as it was (its first source and time); the answer says which are new.
- `DELETE` takes one number off: 200 with the entry removed, 404 if it was not there.

Not JSON: 400; JSON of another shape, a malformed number, a bad `limit` or `after`:
422 (as `POST /bat/message/status` and `GET /bat/messagelist/{id}` answer).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from batgate.api.errors import ApiError, not_found
from batgate.api.reports import page_limit
from batgate.domain.checks import is_digits
from batgate.domain.notifications import rfc3339
from batgate.domain.optout import Source, Suppression, number_problem
from batgate.domain.records import Account
from batgate.store.suppressions import Suppressions

MAX_NUMBERS = 1000  # per POST
_SHOWN_PROBLEMS = 10  # bad numbers named in one refusal


async def suppressions_page(
    listed: Suppressions, account: Account, query: Mapping[str, str]
) -> bytes:
    """`GET /bat/suppressions`: `{"suppressions": [...], "nextCursor": …}`."""
    limit = page_limit(query.get("limit"))
    after = _after(query.get("after"))
    entries, more = await listed.page(account.id, after=after, limit=limit)
    return orjson.dumps(
        {
            "suppressions": [_entry(e) for e in entries],
            "nextCursor": entries[-1].number.removeprefix("+") if more else None,
        }
    )


async def add_suppressions(listed: Suppressions, account: Account, body: bytes) -> bytes:
    """`POST /bat/suppressions`: every number of the body listed now, `added` per entry
    saying whether this request put it there, and their count."""
    numbers = numbers_of(body)
    now = time.time()
    added = await listed.add(account.id, numbers, Source.API, now)
    found = await listed.entries(account.id, numbers)
    entries = [
        # (One taken off by a concurrent DELETE meanwhile: as this request put it.)
        {**_entry(found.get(n) or Suppression(n, Source.API, now)), "added": n in added}
        for n in numbers
    ]
    return orjson.dumps({"added": len(added), "suppressions": entries})


async def remove_suppression(listed: Suppressions, account: Account, number: str) -> bytes:
    """`DELETE /bat/suppressions/{number}`: the entry removed; 422 for a malformed
    number, 404 for one not on the list."""
    problem = number_problem(number)
    if problem is not None:
        raise _unprocessable(f"number: {problem}")
    removed = await listed.remove(account.id, number)
    if removed is None:
        raise not_found(f"{number} is not on this account's suppression list")
    return orjson.dumps(_entry(removed))


def numbers_of(body: bytes) -> list[str]:
    """The numbers of a `POST /bat/suppressions` body, each once, in order:
    `{"numbers": [1 to 1000 E.164 strings]}`. Not JSON: 400; anything else wrong: 422
    naming the bad numbers (the first ten) with their indexes."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "INVALID_REQUEST", "the body is not valid JSON") from None
    numbers = doc.get("numbers") if isinstance(doc, dict) else None
    if not isinstance(numbers, list):
        raise _unprocessable('the body must be {"numbers": ["+380…", …]}')
    if not 1 <= len(numbers) <= MAX_NUMBERS:
        raise _unprocessable(f"{len(numbers)} numbers; give 1 to {MAX_NUMBERS} at a time")
    problems = [
        f"numbers[{index}]: {problem}"
        for index, value in enumerate(numbers)
        if (problem := number_problem(value)) is not None
    ]
    if problems:
        shown = "; ".join(problems[:_SHOWN_PROBLEMS])
        if len(problems) > _SHOWN_PROBLEMS:
            shown += f"; and {len(problems) - _SHOWN_PROBLEMS} more"
        raise _unprocessable(f"nothing was added: {shown}")
    return list(dict.fromkeys(numbers))


def _after(value: str | None) -> str | None:
    """`after`: a `nextCursor` (digits), or a number with its `+`; the number it names."""
    if not value:  # absent or empty: the first page
        return None
    digits = value.removeprefix("+")
    if not (is_digits(digits) and 1 <= len(digits) <= 15):
        raise _unprocessable("after must be the nextCursor of a previous page")
    return "+" + digits


def _entry(entry: Suppression) -> dict[str, Any]:
    return {"number": entry.number, "source": entry.source, "createdAt": rfc3339(entry.created_at)}


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, "INVALID_REQUEST", message)
