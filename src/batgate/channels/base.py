"""The connector protocol: one method. A connector hands one message to a carrier.

A connector whose carrier reports receipts later (SMPP) is also given a
:class:`ReceiptSink` to hand them to; the sandbox predicts its receipts instead
(:class:`batgate.domain.outcomes.ScheduledReceipt`) and needs none.

A carrier that calls back over HTTP (`/callbacks/{connector}`, SPEC §9) has a
:class:`CallbackReader` of its kind: one method that checks a call and says what it
brings (receipts, carrier costs) and what to answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from batgate.domain.inbound import InboundText
from batgate.domain.messages import Step
from batgate.domain.outcomes import CarrierCost, JournaledBatch, PartReceipt, SendResult


@dataclass(frozen=True, slots=True)
class Outbound:
    """One send attempt: the message id, the chain step to send, and the attempt number."""

    message_id: str
    step: Step
    attempt: int
    index: int = 0  # of the step in the message's chain (0: the primary send)
    # Taken back after another claim's lease ran out (a crash): it may have been
    # handed over already.
    resumed: bool = False


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


class InboundSink(Protocol):
    async def inbound(self, connector: str, messages: Sequence[InboundText]) -> None:
        """Store inbound messages `connector`'s carrier brought, all or none.

        Returns once they are stored: only then may the carrier be told they were
        received. Raises when they could not be stored.
        """
        ...


class CostSink(Protocol):
    async def costs(self, connector: str, costs: Sequence[CarrierCost]) -> None:
        """Keep what `connector`'s carrier charged for these steps."""
        ...


class AwaitedParts(Protocol):
    async def awaiting(self, connector: str, handed_before: float, limit: int) -> list[str]:
        """Carrier ids of parts handed to `connector` before then that have no
        receipt yet, oldest first: what a carrier that is polled is asked about."""
        ...


class BatchJournal(Protocol):
    async def journal(
        self, connector: str, key: str, body: bytes, members: Sequence[tuple[str, int]]
    ) -> None:
        """Keep a batch (its key, body and (message id, step) members) before it is sent."""
        ...

    async def journaled(
        self, connector: str, members: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], JournaledBatch]:
        """The latest batch each of `members` was sent in, where one was kept."""
        ...


class CarrierDesk(ReceiptSink, InboundSink, CostSink, AwaitedParts, BatchJournal, Protocol):
    """Everything the engine offers a carrier's connector (engine.receipts.Reconciler)."""


@dataclass(frozen=True, slots=True)
class CarrierCall:
    """A carrier's request to `/callbacks/{connector}`: header names in lower case,
    the query's pairs as sent, the body as read (at most the route's limit), and the
    query's octets as they came (percent-encoded), for a value in another character
    set than UTF-8 (an HTTP carrier's inbound text)."""

    method: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]]
    body: bytes
    raw_query: bytes = b""


@dataclass(frozen=True, slots=True)
class CallbackNews:
    """What a carrier's call brought, and the answer it expects."""

    receipts: tuple[PartReceipt, ...] = ()
    costs: tuple[CarrierCost, ...] = ()
    inbound: tuple[InboundText, ...] = ()
    answer: bytes = b'{"status":"ok"}'
    content_type: str = "application/json"


class CallbackRefused(Exception):
    """A call that is not the carrier's, or not readable: answered `status` with the
    SPEC §6 error `code` and `message`, and nothing stored."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class CallbackReader(Protocol):
    def read(self, call: CarrierCall) -> CallbackNews:
        """Check the call is the carrier's and read it; raise CallbackRefused if not."""
        ...
