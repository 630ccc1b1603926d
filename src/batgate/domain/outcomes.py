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
class CarrierId:
    """A carrier's id of one SMS part (or of the part a receipt is for).

    `key` is the id as stored; `aliases` are other spellings the other side may
    have been stored under (the same number in another base, for a carrier that
    is not consistent about it): a lookup tries the key and its aliases.
    """

    key: str
    aliases: tuple[str, ...] = ()

    @property
    def lookups(self) -> tuple[str, ...]:
        return (self.key, *self.aliases)


@dataclass(frozen=True, slots=True)
class Handover:
    """What a carrier that reports receipts later calls the parts it took.

    `parts` are the carrier's ids of the parts (one per SMS segment); a receipt
    names one of them. They are stored with the message's move to `processing`,
    in the same transaction, so a receipt can always be matched to its message.
    """

    connector: str
    parts: tuple[CarrierId, ...]


@dataclass(frozen=True, slots=True)
class PartReceipt:
    """A carrier's final receipt for one part: which part, how it ended, and what the
    carrier said in its own words (`detail`: its status and error code, kept in the
    message's story when the part was not delivered)."""

    part: CarrierId
    status: ChannelStatus
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CarrierCost:
    """What a carrier charged for one step of a message (its `index` in the chain),
    kept beside the customer's price so that the margin of each message is known."""

    message_id: str
    index: int
    amount: float
    currency: str


@dataclass(frozen=True, slots=True)
class JournaledBatch:
    """A batch handed to an upstream as it was kept before it was sent: sending it
    again is the same request (its Idempotency-Key and body), for all its members
    ((message id, step) pairs)."""

    key: str
    body: bytes
    members: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Accepted:
    """The channel took the message; a receipt follows (or never comes)."""

    carrier_ref: str
    receipt: ScheduledReceipt | None = None
    handover: Handover | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The channel did not take the message. `retryable`: try the same channel again later.

    `retry_after` (seconds) says the channel could not take anything at all just
    now (its carrier is unreachable, or throttles us): the message waits that long
    and the wait is not counted as an attempt, so it waits as long as its TTL
    allows rather than running out of retries while the carrier is away.

    `maybe_taken`: the carrier may have taken it all the same (a submit went
    unanswered, or some of its parts were taken): it is tried again on the same
    connector only, never handed to another carrier for the same step.
    """

    reason: str
    retryable: bool
    retry_after: float | None = None
    maybe_taken: bool = False


SendResult = Accepted | Failed


def handover_outcome(parts: tuple[ChannelStatus | None, ...]) -> ChannelStatus | None:
    """The receipt of a message sent in parts, from its parts' receipts (None: none yet).

    Delivered only when every part is; undeliverable as soon as any part is.
    """
    if any(s is not None and s is not ChannelStatus.DELIVERED for s in parts):
        return ChannelStatus.UNDELIVERABLE
    if parts and all(s is ChannelStatus.DELIVERED for s in parts):
        return ChannelStatus.DELIVERED
    return None
