"""Delivery statuses and the one rule of how they may move (SPEC §3).

``scheduled → processing → delivered | undeliverable | permanenterror`` and
``scheduled → permanenterror``; a final status never changes.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    SCHEDULED = "scheduled"
    PROCESSING = "processing"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    PERMANENTERROR = "permanenterror"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


class ChannelStatus(StrEnum):
    """Status of one channel of a chain (`extendedStatuses`, `fallbacks[].status`)."""

    NOT_USED = "not_used"
    SCHEDULED = "scheduled"
    PROCESSING = "processing"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    PERMANENTERROR = "permanenterror"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_CHANNEL


FINAL_STATUSES = frozenset(
    {DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERABLE, DeliveryStatus.PERMANENTERROR}
)
_FINAL_CHANNEL = frozenset(
    {ChannelStatus.DELIVERED, ChannelStatus.UNDELIVERABLE, ChannelStatus.PERMANENTERROR}
)

_ALLOWED: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.SCHEDULED: frozenset({DeliveryStatus.PROCESSING, DeliveryStatus.PERMANENTERROR}),
    DeliveryStatus.PROCESSING: FINAL_STATUSES,
    DeliveryStatus.DELIVERED: frozenset(),
    DeliveryStatus.UNDELIVERABLE: frozenset(),
    DeliveryStatus.PERMANENTERROR: frozenset(),
}


def can_move(old: DeliveryStatus, new: DeliveryStatus) -> bool:
    """True when `old → new` is a transition SPEC §3 allows (staying put is not a move)."""
    return new in _ALLOWED[old]
