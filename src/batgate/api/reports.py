"""`GET /bat/messagelist/{id}`: a batgate extension summarising one message list."""

from __future__ import annotations

from typing import Any

from batgate.api.errors import not_found
from batgate.domain.pricing import from_micros
from batgate.domain.records import Account
from batgate.domain.status import DeliveryStatus
from batgate.store.manager import Store


async def summarise(store: Store, account: Account, messagelist_id: str) -> dict[str, Any]:
    """Counts per status and the total billed; 404 for unknown or another account's list."""
    summary = None
    if messagelist_id.isdigit() and len(messagelist_id) < 19:
        summary = await store.messagelist_summary(account.id, int(messagelist_id))
    if summary is None:
        raise not_found(f"no message list with id {messagelist_id[:32]!r}")
    counts = {status.value: summary.get(status.value, (0, 0))[0] for status in DeliveryStatus}
    billed = sum(micros for _, micros in summary.values())
    return {
        "messagelistId": int(messagelist_id),
        "total": sum(counts.values()),
        "counts": counts,
        "cost": from_micros(billed),
        "currency": account.currency,
    }
