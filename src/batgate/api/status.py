"""`GET /bat/message/{messageId}`: the status view (SPEC §3) and its cache.

Final statuses never change, so their serialised answers are cached by message
id (a bounded, first-in-first-out dict); that is safe with any number of
processes. Non-final ones are always read from the store.
"""

from __future__ import annotations

from typing import Any

import orjson

from batgate.api.errors import not_found
from batgate.domain.pricing import from_micros
from batgate.domain.records import MessageRecord
from batgate.store.manager import Store


def status_view(r: MessageRecord) -> dict[str, Any]:
    p = r.progress
    parts = r.chain[p.step].parts
    view: dict[str, Any] = {
        "messagelistId": r.messagelist_id,
        "messageId": r.id,
        "deliverystatus": p.status.value,
        "partscount": parts,
    }
    if p.status.is_final:
        view["cost"] = from_micros(r.bill_micros or 0)
    if r.customer_message_id is not None:
        view["customerMessageId"] = r.customer_message_id
    view["type"] = r.type.value
    view["to"] = r.to
    if len(r.chain) > 1:
        view["fallbacks"] = [
            {"type": step.type.value, "status": p.steps[i].value}
            for i, step in enumerate(r.chain[1:], start=1)
        ]
        view["extendedStatuses"] = {
            step.channel.value: p.steps[i].value for i, step in enumerate(r.chain)
        }
        rate = r.rate_micros or 0
        view["rate"] = from_micros(rate)
        view["rateAmount"] = from_micros(rate * parts)
        view["rateCurrency"] = r.rate_currency or r.bill_currency
        view["billAmount"] = from_micros(r.bill_micros or 0)
        view["billCurrency"] = r.bill_currency
    return view


class StatusService:
    def __init__(self, store: Store, cache_size: int) -> None:
        self._store = store
        self._cache_size = cache_size
        self._final: dict[str, tuple[int, bytes]] = {}

    async def render(self, account_id: int, message_id: str) -> bytes:
        """The JSON answer for the account's message, or ApiError 404.

        Another account's message answers exactly like an unknown id.
        """
        hit = self._final.get(message_id)
        if hit is not None:
            if hit[0] != account_id:
                raise _unknown(message_id)
            return hit[1]
        record = await self._store.get_message(message_id) if len(message_id) <= 64 else None
        if record is None or record.account_id != account_id:
            raise _unknown(message_id)
        body = orjson.dumps(status_view(record))
        if record.progress.status.is_final and self._cache_size > 0:
            if len(self._final) >= self._cache_size:
                del self._final[next(iter(self._final))]
            # orjson's bytes keep their ~4 KiB working buffer; an exact-size copy makes
            # a full cache ~40 MB instead of ~400 MB.
            body = memoryview(body).tobytes()
            self._final[message_id] = (account_id, body)
        return body


def _unknown(message_id: str) -> Exception:
    return not_found(f"no message with id {message_id[:64]!r}")
