"""The connector protocol: one method. A connector hands one message to a carrier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from batgate.domain.messages import Step
from batgate.domain.outcomes import SendResult


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
