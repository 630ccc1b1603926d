"""The one state machine of a message and its fallback chain (SPEC §3). Pure.

Every change of a stored message is computed here from its current
:class:`Progress` and an event — a send result, a receipt, or the engine noticing
that the message is due — and written by the store as a compare-and-set on the
version it was read at. So a late or duplicate receipt can never move a status
backwards, and a final status never changes.

Chain rule: a step that does not deliver hands over to the next step; the
message stays `processing` (or `scheduled`, if nothing was handed to a channel
yet) meanwhile, and its final status is the chain's outcome: `delivered` if any
step delivered, else the outcome of the last step tried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from batgate.domain.messages import Step
from batgate.domain.outcomes import Accepted, Failed, SendResult
from batgate.domain.retry import RetryPolicy
from batgate.domain.status import ChannelStatus, DeliveryStatus, can_move


@dataclass(frozen=True, slots=True)
class Progress:
    """The changing part of a stored message."""

    status: DeliveryStatus
    step: int
    steps: tuple[ChannelStatus, ...]
    attempts: int
    due_at: float | None
    deadline: float
    receipt: ChannelStatus | None = None
    carrier_ref: str | None = None
    # The connector that took the current step (None: not handed over yet).
    connector: str | None = None

    @classmethod
    def new(cls, chain: Sequence[Step], now: float) -> Progress:
        steps = (ChannelStatus.SCHEDULED,) + (ChannelStatus.NOT_USED,) * (len(chain) - 1)
        return cls(
            status=DeliveryStatus.SCHEDULED,
            step=0,
            steps=steps,
            attempts=0,
            due_at=now,
            deadline=now + chain[0].ttl,
        )

    @property
    def step_status(self) -> ChannelStatus:
        return self.steps[self.step]


@dataclass(frozen=True, slots=True)
class Note:
    """Why an attempt failed, or a step or the message ended: kept in its history, so
    that an operator can say why (`batgate messages show`)."""

    step: int
    reason: str


@dataclass(frozen=True, slots=True)
class Transition:
    """The new progress, the message statuses entered on the way (in order), and why."""

    progress: Progress
    entered: tuple[DeliveryStatus, ...]
    notes: tuple[Note, ...] = ()

    def then(self, later: Transition) -> Transition:
        """This transition followed by `later`, as one."""
        return Transition(later.progress, self.entered + later.entered, self.notes + later.notes)


class Action(Enum):
    SEND = "send"


def on_due(p: Progress, chain: Sequence[Step], now: float) -> Transition | Action | None:
    """The engine found the message due: send it, or apply what time has decided."""
    if p.status.is_final:
        return None
    if p.step_status is ChannelStatus.PROCESSING:
        if p.receipt is not None and p.due_at is not None and now >= p.due_at:
            return on_receipt(p, p.receipt, chain, now)
        if now >= p.deadline:
            # Handed to the channel, no receipt before the TTL: expired at the carrier.
            why = f"no receipt from the carrier within the TTL ({chain[p.step].ttl} s)"
            return _step_ends(p, ChannelStatus.UNDELIVERABLE, chain, now, why)
        return None
    if now >= p.deadline:
        # Still queued when the TTL passed: removed from the queue.
        tried = f", after {p.attempts} failed attempts" if p.attempts else ""
        why = f"its TTL ({chain[p.step].ttl} s) ran out before it was handed over{tried}"
        return _step_ends(p, ChannelStatus.PERMANENTERROR, chain, now, why)
    return Action.SEND


def on_sent(
    p: Progress,
    result: SendResult,
    chain: Sequence[Step],
    retry: RetryPolicy,
    now: float,
    route: str | None = None,
    connector: str | None = None,
) -> Transition:
    """Apply what the channel answered when the current step was handed to it;
    `route`: where a taken step went and why there, for its story; `connector`: the
    one that answered (kept with a taken step: the console counts by it)."""
    if isinstance(result, Accepted):
        receipt = result.receipt
        if receipt is not None and receipt.at > p.deadline:
            receipt = None  # it would come after the TTL: the message expires first
        handed = _handed(p)
        progress = replace(
            handed.progress,
            connector=connector,
            carrier_ref=result.carrier_ref,
            receipt=None if receipt is None else receipt.status,
            due_at=p.deadline if receipt is None else receipt.at,
        )
        notes = () if route is None else (Note(p.step, f"handed {route}"),)
        return Transition(progress, handed.entered, notes)
    return _on_failed(p, result, chain, retry, now)


def on_receipt(
    p: Progress,
    status: ChannelStatus,
    chain: Sequence[Step],
    now: float,
    carrier_ref: str | None = None,
    detail: str = "",
) -> Transition | None:
    """Apply a delivery receipt for the current step; None when it changes nothing.

    With `carrier_ref`, a receipt for another hand-over (an earlier step or
    attempt) is ignored. `detail`: the carrier's own words, kept in the reason.
    """
    if p.status.is_final or p.step_status is not ChannelStatus.PROCESSING:
        return None
    if carrier_ref is not None and carrier_ref != p.carrier_ref:
        return None
    if not status.is_final:
        return None
    return _step_ends(p, status, chain, now, receipt_reason(status, detail))


def receipt_reason(status: ChannelStatus, detail: str = "") -> str:
    """How a carrier's receipt is told in a message's story."""
    said = f" ({detail})" if detail else ""
    return f"the carrier's receipt: {status.value}{said}"


def on_stuck(p: Progress, chain: Sequence[Step], reclaims: int, now: float) -> Transition | None:
    """Its processing keeps failing (claimed again after its lease ran out `reclaims`
    times, or raising while planned): the message ends `permanenterror` with that
    reason, instead of being claimed for ever. No fallback: the trouble is ours."""
    if p.status.is_final:
        return None
    why = f"its processing kept failing: claimed again {reclaims} times after its lease ran out"
    steps = _set(p.steps, p.step, ChannelStatus.PERMANENTERROR)
    final = DeliveryStatus.PERMANENTERROR
    progress = replace(p, status=final, steps=steps, due_at=None, receipt=None)
    return Transition(progress, (final,), (Note(p.step, why),))


def on_cancel(p: Progress, now: float) -> Transition | None:
    """The account cancelled it (`DELETE /bat/message/{id}`, SPEC §12): a message still
    `scheduled` ends `permanenterror` (cost 0) on the step it was waiting on; None once
    it is past `scheduled` (something was handed to a carrier already)."""
    if p.status is not DeliveryStatus.SCHEDULED:
        return None
    steps = _set(p.steps, p.step, ChannelStatus.PERMANENTERROR)
    final = DeliveryStatus.PERMANENTERROR
    progress = replace(p, status=final, steps=steps, due_at=None, receipt=None)
    return Transition(progress, (final,), (Note(p.step, "cancelled by the account"),))


def on_receipt_heard(
    p: Progress, outcome: ChannelStatus, carrier_ref: str | None, now: float, detail: str = ""
) -> Transition | None:
    """A carrier's final receipt for the current hand-over was heard (all its parts
    answered): it is noted on the message, due now, so that `on_due` applies it in
    the engine, with its price and webhook. None when there is nothing to note: the
    receipt is for another hand-over (an earlier step or attempt), one is noted
    already, or the message is not waiting for one.

    `Progress.receipt` has this one meaning, whoever noted it: the final outcome of
    the current hand-over, applied when the message is due (the sandbox knows it at
    the hand-over and makes it due later; a carrier's receipt is due at once).
    What the carrier said (`detail`) is noted now, in the story: the message keeps
    only the outcome.
    """
    if p.status.is_final or p.step_status is not ChannelStatus.PROCESSING:
        return None
    if carrier_ref is not None and carrier_ref != p.carrier_ref:
        return None
    if p.receipt is not None or not outcome.is_final:
        return None
    notes = (Note(p.step, f"the carrier says: {detail}"),) if detail else ()
    return Transition(replace(p, receipt=outcome, due_at=now), (), notes)


def _on_failed(
    p: Progress, result: Failed, chain: Sequence[Step], retry: RetryPolicy, now: float
) -> Transition:
    if result.retryable and result.retry_after is not None:
        # The channel was not reachable: not an attempt, the message just waits.
        return Transition(replace(p, due_at=min(now + result.retry_after, p.deadline)), ())
    if not result.retryable:
        # The channel looked at it and refused: it was handed over, then undeliverable.
        handed = _handed(p)
        why = f"refused: {result.reason}"
        return handed.then(
            _step_ends(handed.progress, ChannelStatus.UNDELIVERABLE, chain, now, why)
        )
    attempts = p.attempts + 1
    delay = retry.delay(attempts)
    failed = f"attempt {attempts} failed: {result.reason}"
    if delay is None:
        ended = replace(p, attempts=attempts)
        why = f"{failed}; no retries left"
        return _step_ends(ended, ChannelStatus.PERMANENTERROR, chain, now, why)
    # Due again for the retry, or at the TTL if that comes first (it expires queued).
    due = min(now + delay, p.deadline)
    note = Note(p.step, f"{failed}; retried in {delay:.3g} s")
    return Transition(replace(p, attempts=attempts, due_at=due), (), (note,))


def _handed(p: Progress) -> Transition:
    steps = _set(p.steps, p.step, ChannelStatus.PROCESSING)
    if p.status is DeliveryStatus.SCHEDULED:
        return Transition(
            replace(p, status=DeliveryStatus.PROCESSING, steps=steps),
            (DeliveryStatus.PROCESSING,),
        )
    return Transition(replace(p, steps=steps), ())


def _step_ends(
    p: Progress, outcome: ChannelStatus, chain: Sequence[Step], now: float, reason: str
) -> Transition:
    notes = (Note(p.step, reason),)
    steps = _set(p.steps, p.step, outcome)
    nxt = p.step + 1
    if outcome is not ChannelStatus.DELIVERED and nxt < len(chain):
        steps = _set(steps, nxt, ChannelStatus.SCHEDULED)
        progress = Progress(
            status=p.status,
            step=nxt,
            steps=steps,
            attempts=0,
            due_at=now,
            deadline=now + chain[nxt].ttl,
        )
        return Transition(progress, (), notes)
    final = DeliveryStatus(outcome.value)
    entered: tuple[DeliveryStatus, ...] = (final,)
    if not can_move(p.status, final):
        # e.g. scheduled → undeliverable: the message was handed over on the way.
        entered = (DeliveryStatus.PROCESSING, final)
    progress = replace(p, status=final, steps=steps, due_at=None, receipt=None)
    return Transition(progress, entered, notes)


def _set(
    steps: tuple[ChannelStatus, ...], index: int, value: ChannelStatus
) -> tuple[ChannelStatus, ...]:
    return steps[:index] + (value,) + steps[index + 1 :]
