"""Typed outcomes of handing a message to a channel (the connector protocol's answers)."""

from __future__ import annotations

from dataclasses import dataclass

from batgate.domain.status import ChannelStatus


@dataclass(frozen=True, slots=True)
class ScheduledReceipt:
    """A receipt the channel already knows it will report: `status` at time `at`.

    The sandbox predicts its receipts this way, so they are stored with the
    message and survive a restart like any other state.
    """

    status: ChannelStatus
    at: float


@dataclass(frozen=True, slots=True)
class Accepted:
    """The channel took the message; a receipt follows (or never comes)."""

    carrier_ref: str
    receipt: ScheduledReceipt | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The channel did not take the message. `retryable`: try the same channel again later."""

    reason: str
    retryable: bool


SendResult = Accepted | Failed
