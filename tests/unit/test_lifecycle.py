"""The message state machine (SPEC §3): single steps, chains, retries, TTLs, finality."""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import product

import pytest

from batgate.domain.lifecycle import (
    Action,
    Progress,
    Transition,
    on_due,
    on_receipt,
    on_receipt_heard,
    on_sent,
)
from batgate.domain.messages import MessageType, Step
from batgate.domain.outcomes import Accepted, Failed, ScheduledReceipt, SendResult
from batgate.domain.retry import RetryPolicy
from batgate.domain.status import ChannelStatus, DeliveryStatus, can_move

S = DeliveryStatus.SCHEDULED
P = DeliveryStatus.PROCESSING
D = DeliveryStatus.DELIVERED
U = DeliveryStatus.UNDELIVERABLE
E = DeliveryStatus.PERMANENTERROR

CS = ChannelStatus
T0 = 1_000.0
TTL = 600
RETRY = RetryPolicy((1.0, 2.0), jitter=0.0)  # three attempts, then give up


def step(mtype: MessageType, ttl: int = TTL, parts: int = 1) -> Step:
    return Step(mtype, "+380501234567", "Shop", "hi", None, ttl, parts)


SMS = step(MessageType.SMS, parts=2)
VIBER = step(MessageType.VIBER_PROMO)
RCS = step(MessageType.RCS)
CHAINS: dict[str, tuple[Step, ...]] = {
    "sms": (SMS,),
    "viber>sms": (VIBER, SMS),
    "viber>rcs>sms": (VIBER, RCS, SMS),
}


def accepted(status: ChannelStatus | None = None, at: float = 0.0, ref: str = "ref") -> Accepted:
    return Accepted(ref, None if status is None else ScheduledReceipt(status, at))


RETRYABLE = Failed("busy", retryable=True)
REFUSED = Failed("no such number", retryable=False)


# -- a tiny driver: events applied in order, the decisions and entered statuses recorded


@dataclass(frozen=True)
class Due:
    at: float


@dataclass(frozen=True)
class Sent:
    result: SendResult
    at: float


@dataclass(frozen=True)
class Receipt:
    status: ChannelStatus
    at: float


Event = Due | Sent | Receipt


def assert_valid_path(before: DeliveryStatus, t: Transition) -> None:
    """Entered statuses form a path the SPEC allows and end at the new status."""
    current = before
    for status in t.entered:
        assert can_move(current, status), f"{current} -> {status} entered"
        current = status
    assert t.progress.status is current


def drive(
    chain: tuple[Step, ...], events: list[Event]
) -> tuple[Progress, list[DeliveryStatus], list[str]]:
    """Apply the events from a new message; every send must have been asked for by on_due."""
    p = Progress.new(chain, T0)
    entered: list[DeliveryStatus] = []
    decisions: list[str] = []
    for event in events:
        result: Transition | Action | None
        if isinstance(event, Due):
            result = on_due(p, chain, event.at)
        elif isinstance(event, Sent):
            assert decisions and decisions[-1] == "send", "sent without a due send"
            result = on_sent(p, event.result, chain, RETRY, event.at)
        else:
            result = on_receipt(p, event.status, chain, event.at)
        if result is None:
            decisions.append("none")
        elif isinstance(result, Action):
            assert result is Action.SEND
            decisions.append("send")
        else:
            assert_valid_path(p.status, result)
            decisions.append("move")
            entered.extend(result.entered)
            p = result.progress
    return p, entered, decisions


def send(result: SendResult, at: float) -> list[Event]:
    return [Due(at), Sent(result, at)]


def deliver_on(status: ChannelStatus, at: float, delay: float = 2.0) -> list[Event]:
    """Due at `at`, accepted with a receipt `delay` later, and the receipt applied."""
    return [*send(accepted(status, at + delay), at), Due(at + delay)]


# (id, chain, events, final status, channel statuses, entered statuses in order)
CASES: list[
    tuple[str, str, list[Event], DeliveryStatus, tuple[CS, ...], tuple[DeliveryStatus, ...]]
]
CASES = [
    ("sms-delivered", "sms", deliver_on(CS.DELIVERED, T0), D, (CS.DELIVERED,), (P, D)),
    (
        "sms-undeliverable-receipt",
        "sms",
        deliver_on(CS.UNDELIVERABLE, T0),
        U,
        (CS.UNDELIVERABLE,),
        (P, U),
    ),
    ("sms-refused", "sms", send(REFUSED, T0), U, (CS.UNDELIVERABLE,), (P, U)),
    (
        "sms-retries-run-out",
        "sms",
        [*send(RETRYABLE, T0), *send(RETRYABLE, T0 + 1), *send(RETRYABLE, T0 + 3)],
        E,
        (CS.PERMANENTERROR,),
        (E,),
    ),
    (
        "sms-retry-then-delivered",
        "sms",
        [*send(RETRYABLE, T0), *send(RETRYABLE, T0 + 1), *deliver_on(CS.DELIVERED, T0 + 3)],
        D,
        (CS.DELIVERED,),
        (P, D),
    ),
    ("sms-ttl-while-queued", "sms", [Due(T0 + TTL)], E, (CS.PERMANENTERROR,), (E,)),
    (
        "sms-ttl-while-retrying",
        "sms",
        [*send(RETRYABLE, T0), Due(T0 + TTL)],
        E,
        (CS.PERMANENTERROR,),
        (E,),
    ),
    (
        "sms-no-receipt-ttl",
        "sms",
        [*send(accepted(), T0), Due(T0 + TTL - 1), Due(T0 + TTL)],
        U,
        (CS.UNDELIVERABLE,),
        (P, U),
    ),
    (
        "viber-delivered-sms-unused",
        "viber>sms",
        deliver_on(CS.DELIVERED, T0),
        D,
        (CS.DELIVERED, CS.NOT_USED),
        (P, D),
    ),
    (
        "viber-unreachable-sms-delivers",
        "viber>sms",
        [*deliver_on(CS.UNDELIVERABLE, T0), *deliver_on(CS.DELIVERED, T0 + 2)],
        D,
        (CS.UNDELIVERABLE, CS.DELIVERED),
        (P, D),
    ),
    (
        "viber-and-sms-undeliverable",
        "viber>sms",
        [*deliver_on(CS.UNDELIVERABLE, T0), *deliver_on(CS.UNDELIVERABLE, T0 + 2)],
        U,
        (CS.UNDELIVERABLE, CS.UNDELIVERABLE),
        (P, U),
    ),
    (
        "viber-refused-sms-delivers",
        "viber>sms",
        [*send(REFUSED, T0), *deliver_on(CS.DELIVERED, T0)],
        D,
        (CS.UNDELIVERABLE, CS.DELIVERED),
        (P, D),
    ),
    (
        "viber-retries-out-sms-delivers",
        "viber>sms",
        [
            *send(RETRYABLE, T0),
            *send(RETRYABLE, T0 + 1),
            *send(RETRYABLE, T0 + 3),
            *deliver_on(CS.DELIVERED, T0 + 3),
        ],
        D,
        (CS.PERMANENTERROR, CS.DELIVERED),
        (P, D),
    ),
    (
        "all-retries-out-never-handed",
        "viber>sms",
        [
            *send(RETRYABLE, T0),
            *send(RETRYABLE, T0 + 1),
            *send(RETRYABLE, T0 + 3),
            *send(RETRYABLE, T0 + 3),
            *send(RETRYABLE, T0 + 4),
            *send(RETRYABLE, T0 + 6),
        ],
        E,
        (CS.PERMANENTERROR, CS.PERMANENTERROR),
        (E,),
    ),
    (
        "viber-undeliverable-sms-retries-out",
        "viber>sms",
        [
            *deliver_on(CS.UNDELIVERABLE, T0),
            *send(RETRYABLE, T0 + 2),
            *send(RETRYABLE, T0 + 3),
            *send(RETRYABLE, T0 + 5),
        ],
        E,
        (CS.UNDELIVERABLE, CS.PERMANENTERROR),
        (P, E),
    ),
    (
        "viber-no-receipt-ttl-then-sms",
        "viber>sms",
        [*send(accepted(), T0), Due(T0 + TTL), *deliver_on(CS.DELIVERED, T0 + TTL)],
        D,
        (CS.UNDELIVERABLE, CS.DELIVERED),
        (P, D),
    ),
    (
        "viber-ttl-queued-then-sms",
        "viber>sms",
        [Due(T0 + TTL), *deliver_on(CS.DELIVERED, T0 + TTL)],
        D,
        (CS.PERMANENTERROR, CS.DELIVERED),
        (P, D),
    ),
    (
        "viber-rcs-sms-0003",
        "viber>rcs>sms",
        [
            *deliver_on(CS.UNDELIVERABLE, T0),
            *deliver_on(CS.UNDELIVERABLE, T0 + 2),
            *deliver_on(CS.DELIVERED, T0 + 4),
        ],
        D,
        (CS.UNDELIVERABLE, CS.UNDELIVERABLE, CS.DELIVERED),
        (P, D),
    ),
    (
        "viber-rcs-delivers",
        "viber>rcs>sms",
        [*deliver_on(CS.UNDELIVERABLE, T0), *deliver_on(CS.DELIVERED, T0 + 2)],
        D,
        (CS.UNDELIVERABLE, CS.DELIVERED, CS.NOT_USED),
        (P, D),
    ),
    (
        "viber-rcs-sms-0001",
        "viber>rcs>sms",
        [
            *deliver_on(CS.UNDELIVERABLE, T0),
            *send(REFUSED, T0 + 2),
            *deliver_on(CS.UNDELIVERABLE, T0 + 2),
        ],
        U,
        (CS.UNDELIVERABLE, CS.UNDELIVERABLE, CS.UNDELIVERABLE),
        (P, U),
    ),
]


@pytest.mark.parametrize(
    ("chain", "events", "status", "steps", "entered"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_chains(
    chain: str,
    events: list[Event],
    status: DeliveryStatus,
    steps: tuple[CS, ...],
    entered: tuple[DeliveryStatus, ...],
) -> None:
    p, seen, _ = drive(CHAINS[chain], events)
    assert p.status is status
    assert p.steps == steps
    assert tuple(seen) == entered
    assert p.due_at is None  # final: nothing left for the engine
    assert p.receipt is None


# -- single steps: (id, progress before, event, status after, entered)


def fresh(chain: str = "sms") -> Progress:
    return Progress.new(CHAINS[chain], T0)


def handed(chain: str = "sms", receipt: CS | None = None, due: float | None = None) -> Progress:
    p = fresh(chain)
    steps = (CS.PROCESSING, *p.steps[1:])
    return replace(p, status=P, steps=steps, receipt=receipt, due_at=due or p.deadline)


SINGLE: list[tuple[str, str, Progress, Event, DeliveryStatus, tuple[DeliveryStatus, ...]]] = [
    ("accepted-with-receipt", "sms", fresh(), Sent(accepted(CS.DELIVERED, T0 + 2), T0), P, (P,)),
    ("accepted-no-receipt", "sms", fresh(), Sent(accepted(), T0), P, (P,)),
    ("refused", "sms", fresh(), Sent(REFUSED, T0), U, (P, U)),
    ("refused-with-fallback", "viber>sms", fresh("viber>sms"), Sent(REFUSED, T0), P, (P,)),
    ("retryable", "sms", fresh(), Sent(RETRYABLE, T0), S, ()),
    ("ttl-queued", "sms", fresh(), Due(T0 + TTL), E, (E,)),
    ("ttl-queued-with-fallback", "viber>sms", fresh("viber>sms"), Due(T0 + TTL), S, ()),
    ("ttl-processing", "sms", handed(), Due(T0 + TTL), U, (U,)),
    ("receipt-delivered", "sms", handed(), Receipt(CS.DELIVERED, T0 + 1), D, (D,)),
    ("receipt-undeliverable", "sms", handed(), Receipt(CS.UNDELIVERABLE, T0 + 1), U, (U,)),
    ("receipt-permanenterror", "sms", handed(), Receipt(CS.PERMANENTERROR, T0 + 1), E, (E,)),
    (
        "stored-receipt-due",
        "sms",
        handed(receipt=CS.DELIVERED, due=T0 + 2),
        Due(T0 + 2),
        D,
        (D,),
    ),
    (
        "receipt-with-fallback",
        "viber>sms",
        handed("viber>sms"),
        Receipt(CS.UNDELIVERABLE, T0 + 1),
        P,
        (),
    ),
]


@pytest.mark.parametrize(
    ("chain", "before", "event", "status", "entered"),
    [pytest.param(*case[1:], id=case[0]) for case in SINGLE],
)
def test_single_transitions(
    chain: str,
    before: Progress,
    event: Event,
    status: DeliveryStatus,
    entered: tuple[DeliveryStatus, ...],
) -> None:
    steps = CHAINS[chain]
    result: Transition | Action | None
    if isinstance(event, Sent):
        result = on_sent(before, event.result, steps, RETRY, event.at)
    elif isinstance(event, Due):
        result = on_due(before, steps, event.at)
    else:
        result = on_receipt(before, event.status, steps, event.at)
    assert isinstance(result, Transition)
    assert result.progress.status is status
    assert result.entered == entered
    assert_valid_path(before.status, result)


def test_new_progress() -> None:
    p = Progress.new(CHAINS["viber>rcs>sms"], T0)
    assert p == Progress(
        status=S,
        step=0,
        steps=(CS.SCHEDULED, CS.NOT_USED, CS.NOT_USED),
        attempts=0,
        due_at=T0,
        deadline=T0 + TTL,
    )
    assert p.step_status is CS.SCHEDULED


@pytest.mark.parametrize("at", [T0, T0 + TTL - 0.001])
def test_due_before_ttl_sends(at: float) -> None:
    assert on_due(fresh(), CHAINS["sms"], at) is Action.SEND


@pytest.mark.parametrize(
    ("receipt_at", "due_at"),
    [(T0 + 2, T0 + 2), (T0, T0), (T0 + TTL, T0 + TTL)],
    ids=["before-ttl", "immediate", "at-ttl"],
)
def test_accepted_stores_receipt_until_due(receipt_at: float, due_at: float) -> None:
    t = on_sent(fresh(), accepted(CS.DELIVERED, receipt_at, "c-1"), CHAINS["sms"], RETRY, T0)
    assert t.progress.receipt is CS.DELIVERED
    assert t.progress.carrier_ref == "c-1"
    assert t.progress.due_at == due_at
    assert t.progress.steps == (CS.PROCESSING,)


def test_accepted_without_receipt_waits_for_the_ttl() -> None:
    t = on_sent(fresh(), accepted(), CHAINS["sms"], RETRY, T0)
    assert t.progress.receipt is None
    assert t.progress.due_at == t.progress.deadline == T0 + TTL


def test_processing_waits_while_receipt_not_due() -> None:
    p = handed(receipt=CS.DELIVERED, due=T0 + 5)
    assert on_due(p, CHAINS["sms"], T0 + 4.999) is None


def test_processing_without_receipt_waits_for_ttl() -> None:
    assert on_due(handed(), CHAINS["sms"], T0 + TTL - 1) is None


def test_receipt_announced_after_the_ttl_does_not_deliver_at_the_ttl() -> None:
    """A receipt the carrier will only send after the TTL has not arrived when the TTL
    passes: the message expired at the carrier (undeliverable), as with no receipt."""
    t = on_sent(fresh(), accepted(CS.DELIVERED, T0 + TTL + 10), CHAINS["sms"], RETRY, T0)
    result = on_due(t.progress, CHAINS["sms"], T0 + TTL)
    assert isinstance(result, Transition)
    assert result.progress.status is U
    assert result.entered == (U,)


@pytest.mark.parametrize("attempt", [1, 2])
def test_retry_schedules_next_attempt(attempt: int) -> None:
    p = replace(fresh(), attempts=attempt - 1)
    t = on_sent(p, RETRYABLE, CHAINS["sms"], RETRY, T0 + 10)
    assert t.entered == ()
    assert t.progress.status is S
    assert t.progress.attempts == attempt
    assert t.progress.due_at == T0 + 10 + RETRY.delays[attempt - 1]
    assert t.progress.steps == (CS.SCHEDULED,)


def test_retry_wait_never_passes_the_ttl() -> None:
    # The next attempt would come after the TTL: due at the TTL instead, and expires queued.
    t = on_sent(fresh(), RETRYABLE, CHAINS["sms"], RETRY, T0 + TTL - 0.5)
    assert t.progress.due_at == t.progress.deadline == T0 + TTL
    expired = on_due(t.progress, CHAINS["sms"], T0 + TTL)
    assert isinstance(expired, Transition)
    assert (expired.progress.status, expired.entered) == (E, (E,))


def test_retry_on_a_fallback_step_keeps_processing() -> None:
    p = replace(fresh("viber>sms"), status=P, step=1, steps=(CS.UNDELIVERABLE, CS.SCHEDULED))
    t = on_sent(p, RETRYABLE, CHAINS["viber>sms"], RETRY, T0)
    assert (t.progress.status, t.progress.attempts, t.entered) == (P, 1, ())


def test_fallback_advance_resets_attempts_and_deadline() -> None:
    chain = (VIBER, step(MessageType.SMS, ttl=60))
    p, _, _ = drive(chain, [*send(RETRYABLE, T0), *send(RETRYABLE, T0 + 1)])
    assert p.attempts == 2
    t = on_sent(p, REFUSED, chain, RETRY, T0 + 3)
    assert t.entered == (P,)
    assert t.progress == Progress(
        status=P,
        step=1,
        steps=(CS.UNDELIVERABLE, CS.SCHEDULED),
        attempts=0,
        due_at=T0 + 3,
        deadline=T0 + 3 + 60,
        receipt=None,
        carrier_ref=None,
    )


def test_fallback_advance_drops_the_previous_receipt() -> None:
    chain = CHAINS["viber>sms"]
    p, _, _ = drive(chain, send(accepted(CS.UNDELIVERABLE, T0 + 2, "viber-ref"), T0))
    assert (p.receipt, p.carrier_ref) == (CS.UNDELIVERABLE, "viber-ref")
    t = on_due(p, chain, T0 + 2)
    assert isinstance(t, Transition)
    assert t.entered == ()
    assert t.progress.status is P
    assert (t.progress.step, t.progress.receipt, t.progress.carrier_ref) == (1, None, None)
    # The next step is sent, not settled by the earlier step's receipt.
    assert on_due(t.progress, chain, T0 + 2) is Action.SEND


def test_late_receipt_for_an_earlier_step_is_ignored() -> None:
    chain = CHAINS["viber>sms"]
    p, _, _ = drive(chain, deliver_on(CS.UNDELIVERABLE, T0))
    assert (p.step, p.steps) == (1, (CS.UNDELIVERABLE, CS.SCHEDULED))
    # Viber's receipt arrives late, while sms waits to be sent: nothing changes.
    for status in (CS.DELIVERED, CS.UNDELIVERABLE):
        assert on_receipt(p, status, chain, T0 + 3) is None


@pytest.mark.parametrize("status", [CS.NOT_USED, CS.SCHEDULED, CS.PROCESSING])
def test_non_final_receipt_changes_nothing(status: CS) -> None:
    assert on_receipt(handed(), status, CHAINS["sms"], T0 + 1) is None


@pytest.mark.parametrize("status", [CS.DELIVERED, CS.UNDELIVERABLE])
def test_receipt_for_a_message_not_yet_sent_is_ignored(status: CS) -> None:
    assert on_receipt(fresh(), status, CHAINS["sms"], T0) is None


FINALS: list[tuple[str, Progress]] = [
    ("delivered", drive(CHAINS["sms"], deliver_on(CS.DELIVERED, T0))[0]),
    ("undeliverable", drive(CHAINS["sms"], send(REFUSED, T0))[0]),
    ("permanenterror", drive(CHAINS["sms"], [Due(T0 + TTL)])[0]),
    (
        "chain-delivered",
        drive(CHAINS["viber>sms"], [*send(REFUSED, T0), *deliver_on(CS.DELIVERED, T0)])[0],
    ),
    # A final status even with a stale stored receipt and due time.
    ("delivered-stale-receipt", replace(handed(receipt=CS.UNDELIVERABLE, due=T0), status=D)),
]


LATER: list[tuple[str, Event]] = [
    ("due-now", Due(T0)),
    ("due-after-ttl", Due(T0 + 10 * TTL)),
    ("receipt-delivered", Receipt(CS.DELIVERED, T0 + 1)),
    ("receipt-undeliverable", Receipt(CS.UNDELIVERABLE, T0 + 1)),
    ("receipt-permanenterror", Receipt(CS.PERMANENTERROR, T0 + 1)),
]


@pytest.mark.parametrize(
    ("progress", "event"),
    [pytest.param(p, e, id=f"{name}-{label}") for (name, p), (label, e) in product(FINALS, LATER)],
)
def test_final_never_changes(progress: Progress, event: Event) -> None:
    assert progress.status.is_final
    chain = CHAINS["viber>sms"] if len(progress.steps) == 2 else CHAINS["sms"]
    if isinstance(event, Due):
        assert on_due(progress, chain, event.at) is None
    else:
        assert on_receipt(progress, event.status, chain, event.at) is None


# -- can_move: all 25 pairs

ALLOWED = {(S, P), (S, E), (P, D), (P, U), (P, E)}


@pytest.mark.parametrize(
    ("old", "new"),
    list(product(DeliveryStatus, DeliveryStatus)),
    ids=[f"{a}->{b}" for a, b in product(DeliveryStatus, DeliveryStatus)],
)
def test_can_move(old: DeliveryStatus, new: DeliveryStatus) -> None:
    assert can_move(old, new) is ((old, new) in ALLOWED)


def test_can_move_covers_all_pairs() -> None:
    assert len(list(product(DeliveryStatus, DeliveryStatus))) == 25


@pytest.mark.parametrize(
    ("status", "final"), [(S, False), (P, False), (D, True), (U, True), (E, True)]
)
def test_is_final(status: DeliveryStatus, final: bool) -> None:
    assert status.is_final is final
    assert CS(status.value).is_final is final


def test_not_used_is_not_final() -> None:
    assert CS.NOT_USED.is_final is False


# -- a carrier's receipt heard: noted on the message, applied when due ----------------------

HEARD = [
    # (id, the message, the receipt, its hand-over, noted?)
    ("for the current hand-over", "handed", CS.DELIVERED, "ref", True),
    ("undeliverable too", "handed", CS.UNDELIVERABLE, "ref", True),
    ("any hand-over (no reference)", "handed", CS.DELIVERED, None, True),
    ("for an earlier hand-over", "handed", CS.DELIVERED, "older", False),
    ("not final", "handed", CS.PROCESSING, "ref", False),
    ("one noted already", "noted", CS.UNDELIVERABLE, "ref", False),
    ("not handed over yet", "fresh", CS.DELIVERED, "ref", False),
    ("final already", "final", CS.DELIVERED, "ref", False),
]


@pytest.mark.parametrize(
    ("message", "status", "ref", "noted"), [h[1:] for h in HEARD], ids=[h[0] for h in HEARD]
)
def test_a_heard_receipt_is_noted_and_due_now(
    message: str, status: CS, ref: str | None, noted: bool
) -> None:
    chain = CHAINS["sms"]
    progress = {
        "handed": replace(handed(), carrier_ref="ref"),
        "noted": replace(handed(), carrier_ref="ref", receipt=CS.DELIVERED, due_at=T0 + 5),
        "fresh": fresh(),
        "final": drive(chain, deliver_on(CS.DELIVERED, T0))[0],
    }[message]
    t = on_receipt_heard(progress, status, ref, T0 + 2)
    if not noted:
        assert t is None
        return
    assert t is not None and t.entered == ()
    assert t.progress == replace(progress, receipt=status, due_at=T0 + 2)
    # Due now: the engine applies it through on_due, to its final status.
    applied = on_due(t.progress, chain, T0 + 2)
    assert isinstance(applied, Transition)
    assert applied.entered == (DeliveryStatus(status.value),)


# (id, what the carrier said, the note the receipt leaves when heard, its step's end reason)
SAID = [
    ("nothing said", "", None, "the carrier's receipt: undeliverable"),
    (
        "an SMSC's words",
        "SMSC: UNDELIVERABLE err:012",
        "the carrier says: SMSC: UNDELIVERABLE err:012",
        "the carrier's receipt: undeliverable (SMSC: UNDELIVERABLE err:012)",
    ),
]


@pytest.mark.parametrize(
    ("detail", "heard_note", "ended"), [s[1:] for s in SAID], ids=[s[0] for s in SAID]
)
def test_what_the_carrier_said_is_kept_in_the_story(
    detail: str, heard_note: str | None, ended: str
) -> None:
    chain = CHAINS["sms"]
    progress = replace(handed(), carrier_ref="ref")
    heard = on_receipt_heard(progress, CS.UNDELIVERABLE, "ref", T0 + 2, detail)
    assert heard is not None
    assert [n.reason for n in heard.notes] == ([heard_note] if heard_note else [])
    # A receipt applied at once (it came before its hand-over was written) says it too.
    applied = on_receipt(progress, CS.UNDELIVERABLE, chain, T0 + 2, detail=detail)
    assert applied is not None and [n.reason for n in applied.notes] == [ended]
