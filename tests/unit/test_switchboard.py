"""The switchboard: a hand-over goes to the first connector of its route that takes
it; a passing failure moves it on, a refusal or a carrier that may have it does not;
an open circuit is skipped until its probe.

The connectors are scripted (each answers what the case says, in turn): the carriers'
own behaviour is tested against real peers in the integration and e2e tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from batgate.channels.base import Outbound
from batgate.domain.messages import MessageType, Step
from batgate.domain.outcomes import Accepted, Failed, SendResult
from batgate.domain.routing import Router, Rule
from batgate.engine.switchboard import DRAIN_RECHECK, Circuit, Switchboard

STEP = Step(MessageType.SMS, "+380501234567", "shop", "hi", None, 3600, 1)
OK = Accepted("ref")
UNBOUND = Failed("not bound", True, retry_after=1.0)
THROTTLED = Failed("throttled", True, retry_after=2.0)
HTTP_503 = Failed("HTTP 503", True)
UNANSWERED = Failed("no answer", True, maybe_taken=True)
REFUSED = Failed("invalid destination", False)


@dataclass
class Scripted:
    name: str
    answers: list[SendResult | Exception]
    calls: list[str] = field(default_factory=list)

    async def send(self, message: Outbound) -> SendResult:
        self.calls.append(message.message_id)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def board(
    a: Sequence[SendResult | Exception], b: Sequence[SendResult | Exception], clock: Clock
) -> tuple[Switchboard, Scripted, Scripted]:
    ca, cb = Scripted("a", list(a)), Scripted("b", list(b))
    router = Router((Rule(("a", "b")),), {})
    circuits = {n: Circuit(3, 30.0, clock) for n in ("a", "b")}
    return Switchboard(router, {"a": ca, "b": cb}, circuits, clock), ca, cb


def outbound(message_id: str = "m1") -> Outbound:
    return Outbound(message_id, STEP, 1)


# (a's answer, b's answer, the result, which connector gave it, whether b was asked)
ONE_SEND = [
    ("a takes it", [OK], [OK], OK, "a", False),
    ("a not bound: b", [UNBOUND], [OK], OK, "b", True),
    ("a answers 503: b", [HTTP_503], [OK], OK, "b", True),
    ("a may have it: a only", [UNANSWERED], [OK], UNANSWERED, "a", False),
    ("a raises: it may have gone out", [RuntimeError("bug")], [OK], None, "a", False),
    ("a refuses: no one else", [REFUSED], [OK], REFUSED, "a", False),
    ("b refuses after a", [UNBOUND], [REFUSED], REFUSED, "b", True),
    (
        "neither reachable: the message waits, no attempt",
        [UNBOUND],
        [THROTTLED],
        Failed("a: not bound; b: throttled", True, retry_after=1.0),
        "b",
        True,
    ),
    (
        "one answered 503: an attempt",
        [UNBOUND],
        [HTTP_503],
        Failed("a: not bound; b: HTTP 503", True),
        "b",
        True,
    ),
]


@pytest.mark.parametrize(
    ("a", "b", "result", "connector", "b_asked"),
    [case[1:] for case in ONE_SEND],
    ids=[case[0] for case in ONE_SEND],
)
async def test_one_hand_over(
    a: list[SendResult | Exception],
    b: list[SendResult | Exception],
    result: SendResult | None,
    connector: str,
    b_asked: bool,
) -> None:
    switchboard, ca, cb = board(a, b, Clock())
    sent = await switchboard.send(outbound(), 0, None)
    if result is None:  # the connector raised
        assert isinstance(sent.result, Failed) and sent.result.maybe_taken
    else:
        assert sent.result == result
    assert (sent.connector, sent.rule) == (connector, 1)
    assert ca.calls == ["m1"]
    assert cb.calls == (["m1"] if b_asked else [])


async def test_a_step_a_carrier_may_have_stays_there_until_it_takes_it() -> None:
    switchboard, ca, cb = board([UNANSWERED, UNBOUND, OK], [OK], Clock())
    for _ in range(3):
        sent = await switchboard.send(outbound(), 0, None)
        assert sent.connector == "a"
    assert sent.result == OK
    assert (len(ca.calls), cb.calls) == (3, [])
    # Taken: the next step (a fallback) and other messages route as usual again.
    await switchboard.send(outbound(), 1, None)
    await switchboard.send(outbound("m2"), 0, None)
    assert len(ca.calls) == 5


async def test_the_story_says_where_it_went_and_what_was_passed_over() -> None:
    switchboard, _, _ = board([UNBOUND], [OK], Clock())
    sent = await switchboard.send(outbound(), 0, None)
    assert sent.note() == "to b by route 1; passed over a (not bound)"


async def test_an_open_circuit_is_skipped_until_its_probe() -> None:
    clock = Clock()
    switchboard, ca, cb = board([UNBOUND, UNBOUND, UNBOUND, HTTP_503, OK], [OK], clock)
    for n in range(3):  # three passing failures in a row: a's circuit opens
        assert (await switchboard.send(outbound(f"m{n}"), 0, None)).connector == "b"
    assert len(ca.calls) == 3
    sent = await switchboard.send(outbound("m3"), 0, None)
    assert (sent.connector, len(ca.calls)) == ("b", 3)  # skipped
    assert sent.passed == (("a", "its circuit is open"),)
    clock.now += 30  # the cool-down: one probe, which fails: open again
    assert (await switchboard.send(outbound("m4"), 0, None)).connector == "b"
    assert len(ca.calls) == 4
    assert (await switchboard.send(outbound("m5"), 0, None)).connector == "b"
    assert len(ca.calls) == 4
    clock.now += 30  # the next probe succeeds: closed
    assert (await switchboard.send(outbound("m6"), 0, None)).connector == "a"
    assert (await switchboard.send(outbound("m7"), 0, None)).connector == "a"


async def test_every_circuit_open_the_message_waits_for_the_first_probe() -> None:
    clock = Clock()
    switchboard, ca, cb = board([UNBOUND], [THROTTLED], clock)
    for n in range(3):
        await switchboard.send(outbound(f"m{n}"), 0, None)
    clock.now += 10
    sent = await switchboard.send(outbound("m9"), 0, None)
    assert isinstance(sent.result, Failed)
    assert sent.result.retry_after == pytest.approx(20.0)
    assert (len(ca.calls), len(cb.calls)) == (3, 3)


async def test_a_lone_connector_is_tried_even_with_its_circuit_open() -> None:
    clock = Clock()
    lone = Scripted("a", [UNBOUND, UNBOUND, UNBOUND, UNBOUND, OK])
    router = Router((Rule(("a",)),), {})
    switchboard = Switchboard(router, {"a": lone}, {"a": Circuit(3, 30.0, clock)})
    results = [(await switchboard.send(outbound(f"m{n}"), 0, None)).result for n in range(5)]
    assert results == [UNBOUND] * 4 + [OK]


async def test_a_drained_connector_is_skipped_and_a_route_all_drained_waits() -> None:
    switchboard, ca, cb = board([OK], [OK], Clock())
    switchboard.drain({"a"})
    sent = await switchboard.send(outbound(), 0, None)
    assert (sent.connector, sent.passed) == ("b", (("a", "drained by the operator"),))
    switchboard.drain({"a", "b"})
    sent = await switchboard.send(outbound("m2"), 0, None)
    assert sent.result == Failed(
        "a: drained by the operator; b: drained by the operator", True, retry_after=DRAIN_RECHECK
    )
    assert (ca.calls, cb.calls) == ([], ["m1"])
    switchboard.drain(set())
    assert (await switchboard.send(outbound("m3"), 0, None)).connector == "a"


async def test_what_the_operator_sees_of_each_connector() -> None:
    clock = Clock()
    switchboard, _, _ = board([UNBOUND, UNBOUND, UNBOUND, OK], [OK], clock)
    for n in range(4):
        await switchboard.send(outbound(f"m{n}"), 0, None)
    a, b = switchboard.reports()
    assert (a.connector, a.state, a.in_flight, a.sent_minute, a.errors_minute) == (
        "a",
        "circuit-open",
        0,
        3,
        3,
    )
    assert (a.last_error, a.last_error_at) == ("not bound", clock.now)
    assert (b.connector, b.state, b.sent_minute, b.errors_minute, b.last_error) == (
        "b",
        "up",
        4,
        0,
        None,
    )
    switchboard.drain({"b"})
    clock.now += 61  # a minute later the counts are of the last minute only
    a, b = switchboard.reports()
    assert (a.sent_minute, b.state, b.sent_minute) == (0, "drained", 0)


async def test_a_connector_known_down_is_not_asked_when_the_route_has_another() -> None:
    """Not bound (SMPP): asking it would wait for its reconnect; with another connector
    the hand-over goes there at once, and alone on its route it is asked all the same."""
    unbound = Scripted("a", [OK])
    unbound.bound_links = 0  # type: ignore[attr-defined]
    unbound.down_reason = "connection refused"  # type: ignore[attr-defined]
    other = Scripted("b", [OK])
    router = Router((Rule(("a",), channels=frozenset({"viber"})), Rule(("a", "b"))), {})
    switchboard = Switchboard(router, {"a": unbound, "b": other})
    sent = await switchboard.send(outbound(), 0, None)
    assert (sent.connector, unbound.calls) == ("b", [])
    assert (sent.rule, sent.passed) == (
        2,
        (("a", "a: not bound to the SMSC (connection refused)"),),
    )
    viber = Outbound(
        "m2", Step(MessageType.VIBER_TRANS, "+380501234567", "shop", "hi", None, 60, 1), 1
    )
    assert (await switchboard.send(viber, 0, None)).connector == "a"
    assert unbound.calls == ["m2"]
