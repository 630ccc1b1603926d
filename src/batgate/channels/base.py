"""The connector protocol: one method. A connector hands one message to a carrier.

A connector whose carrier reports receipts later (SMPP) is also given a
:class:`ReceiptSink` to hand them to; the sandbox predicts its receipts instead
(:class:`batgate.domain.outcomes.ScheduledReceipt`) and needs none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from batgate.domain.messages import Step
from batgate.domain.outcomes import PartReceipt, SendResult


@dataclass(frozen=True, slots=True)
class Outbound:
    """One send attempt: the message id, the chain step to send, and the attempt number."""

    message_id: str
    step: Step
    attempt: int


class Connector(Protocol):
    async def send(self, message: Outbound) -> SendResult:
        """Hand the message over; say whether it was taken, or why not (and if retryable)."""
        ...


class ReceiptSink(Protocol):
    async def receipts(self, connector: str, receipts: Sequence[PartReceipt]) -> None:
        """Store final receipts of parts `connector` handed over, all or none.

        Returns once they are stored: only then may the carrier be told they were
        received. Raises when they could not be stored.
        """
        ...
