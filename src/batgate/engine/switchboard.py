"""The switchboard: hands a step to the connectors its route allows, failing over.

The route (domain.routing) gives the connectors to try, in order. Each is tried in
turn until one takes the step; the next is tried only when the one before could
not take it for a passing reason (throttled, not bound, 5xx, no connection: a
retryable `Failed`) and surely did not take it. A carrier that may have taken it
(a submit unanswered, some parts taken: `Failed.maybe_taken`) keeps the step: it
is tried again there and nowhere else, so no step reaches two carriers. A refusal
(a permanent `Failed`) ends the try: another carrier would refuse it too.

With another connector on the route, one known to be down (SMPP: no bound link)
or drained by the operator is passed over without being asked.

All of one `send` is one attempt: a hop to the next connector uses none. When none
could take it, the message waits as the last failure says (without using an
attempt when every connector was unreachable or throttling).

Each connector has a circuit: after `circuit_errors` passing failures in a row it
opens, and routes with another connector skip it for `circuit_cooldown` seconds;
then one hand-over probes it (half-open), and the first success closes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from batgate.channels.base import Connector, Outbound
from batgate.channels.registry import sandbox_named
from batgate.config import Settings
from batgate.domain.messages import Channel
from batgate.domain.outcomes import Accepted, Failed, SendResult
from batgate.domain.records import ConnectorReport
from batgate.domain.routing import PriceTable, Router, Rule
from batgate.observability import metrics

log = logging.getLogger(__name__)

_STICKY_MAX = 100_000  # steps kept on the carrier that may have them (oldest dropped)
DRAIN_RECHECK = 2.0  # a hand-over whose every connector is drained waits this long
DOWN_RECHECK = 1.0  # … and one whose connectors are down (not bound), this long


@dataclass(frozen=True, slots=True)
class Sent:
    """What came of a hand-over: the result, the connector that gave it, the rule
    that routed it (from 1; None: the channel's default), and the connectors tried
    before it with why each could not take it."""

    result: SendResult
    connector: str
    rule: int | None
    passed: tuple[tuple[str, str], ...] = ()

    def note(self) -> str:
        """For the message's story: where it went, and why not elsewhere first."""
        route = "by its channel's default" if self.rule is None else f"by route {self.rule}"
        text = f"to {self.connector} {route}"
        if self.passed:
            text += "; passed over " + "; ".join(f"{n} ({why})" for n, why in self.passed)
        return text


class Circuit:
    """One connector's circuit breaker (in this process)."""

    def __init__(self, errors: int, cooldown: float, clock: Callable[[], float]) -> None:
        self._errors = errors
        self._cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allows(self) -> bool:
        """Whether a hand-over may go to it now (a closed circuit, or the one probe of
        a half-open one)."""
        if self._opened_at is None:
            return True
        if self._probing or self._clock() < self._opened_at + self._cooldown:
            return False
        self._probing = True
        return True

    def opens_in(self) -> float:
        """Seconds until it lets a probe through (0 when closed)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._cooldown - self._clock())

    def succeeded(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failed(self) -> bool:
        """Count a passing failure; True when the circuit opened now."""
        self._failures += 1
        if self._probing or (self._opened_at is None and self._failures >= self._errors):
            was_open = self._opened_at is not None
            self._opened_at = self._clock()
            self._probing = False
            return not was_open
        return False


class MinuteCount:
    """Events in the last minute, in one-second buckets."""

    def __init__(self) -> None:
        self._buckets = [0] * 60
        self._seconds = [-1] * 60

    def add(self, now: float) -> None:
        second = int(now)
        i = second % 60
        if self._seconds[i] != second:
            self._seconds[i], self._buckets[i] = second, 0
        self._buckets[i] += 1

    def total(self, now: float) -> int:
        since = int(now) - 59
        return sum(n for n, s in zip(self._buckets, self._seconds, strict=True) if s >= since)


class Traffic:
    """One connector's hand-overs in this process: in flight, sent and failed in the
    last minute, and the last failure."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.sent = MinuteCount()
        self.errors = MinuteCount()
        self.last_error: str | None = None
        self.last_error_at: float | None = None

    def ended(self, result: SendResult, now: float) -> None:
        self.sent.add(now)
        if isinstance(result, Failed) and result.retryable:
            self.errors.add(now)
            self.last_error, self.last_error_at = result.reason, now


class Switchboard:
    def __init__(
        self,
        router: Router,
        connectors: Mapping[str, Connector],
        circuits: Mapping[str, Circuit] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._router = router
        self._connectors = dict(connectors)
        self._circuits = dict(circuits or {})
        self._clock = clock
        self._traffic = {name: Traffic() for name in self._connectors}
        self._drained: frozenset[str] = frozenset()  # by the operator (store.connectors)
        self._sticky: dict[tuple[str, int], str] = {}  # (message, step) → connector
        self.routed = router.routed  # [[routes]] rules exist: hand-overs are noted

    @classmethod
    def from_settings(cls, settings: Settings, connectors: Mapping[str, Connector]) -> Switchboard:
        """The routes of SPEC §9 as configured, over the connectors by name
        (channels.registry.build_connectors), a circuit for each carrier's."""
        rules = [
            Rule(
                connectors=tuple(sandbox_named(name) for name in rule.connectors),
                channels=frozenset(rule.channels),
                prefixes=tuple(rule.prefixes),
                accounts=frozenset(rule.accounts),
                strategy=rule.strategy,
                weights=tuple(rule.weights),
            )
            for rule in settings.route_rules()
        ]
        defaults = {channel.value: settings.connector_for(channel.value) for channel in Channel}
        carriers = settings.connectors
        prices = {name: PriceTable(c.prices) for name, c in carriers.items() if c.prices}
        circuits = {
            name: Circuit(c.circuit_errors, c.circuit_cooldown, time.monotonic)
            for name, c in carriers.items()
        }
        return cls(Router(rules, defaults, prices), connectors, circuits)

    @classmethod
    def per_channel(cls, connectors: Mapping[Channel, Connector]) -> Switchboard:
        """One connector per channel, no rules (as tests and the earlier form need)."""
        router = Router((), {channel.value: channel.value for channel in connectors})
        return cls(router, {channel.value: c for channel, c in connectors.items()})

    @property
    def uses_accounts(self) -> bool:
        return self._router.uses_accounts

    @property
    def connectors(self) -> dict[str, Connector]:
        return self._connectors

    async def send(self, outbound: Outbound, step: int, account: str | None) -> Sent:
        """Hand step number `step` of the message to the first connector of its route
        that takes it."""
        channel = outbound.step.channel.value
        route = self._router.route(channel, outbound.step.to, account)
        key = (outbound.message_id, step)
        sticky = self._sticky.get(key)
        names = (sticky,) if sticky is not None else route.connectors
        passed: list[tuple[str, str]] = []
        failures: list[Failed] = []
        # With somewhere else to go, a connector known to be down is not waited for.
        alternatives = len(route.connectors) > 1
        for name in names:
            if name in self._drained:
                passed.append((name, "drained by the operator"))
                continue
            down = self._down(name) if alternatives else None
            if down is not None:
                passed.append((name, down))
                failures.append(Failed(down, True, retry_after=DOWN_RECHECK))
                continue
            circuit = self._circuits.get(name)
            if circuit is not None and len(names) > 1 and not circuit.allows():
                passed.append((name, "its circuit is open"))
                continue
            result = await self._send_one(name, outbound)
            if isinstance(result, Accepted) or not result.retryable:
                self._sticky.pop(key, None)
                if circuit is not None:
                    circuit.succeeded()
                return Sent(result, name, route.rule, tuple(passed))
            if circuit is not None and circuit.failed():
                log.warning("connector %s: circuit open after: %s", name, result.reason)
                metrics.circuit_opened(name).inc()
            if result.maybe_taken:
                self._keep_on(key, name)
                return Sent(result, name, route.rule, tuple(passed))
            passed.append((name, result.reason))
            failures.append(result)
        return Sent(self._none_took(names, passed, failures), names[-1], route.rule)

    def _none_took(
        self, names: tuple[str, ...], passed: list[tuple[str, str]], failures: list[Failed]
    ) -> Failed:
        """No connector took it, each for a passing reason: the message waits, without
        using an attempt when each said when to try again (unreachable, throttling)
        or was skipped for its open circuit."""
        if len(passed) == 1 and failures:
            return failures[0]
        why = "; ".join(f"{n}: {r}" for n, r in passed)
        waits = [f.retry_after for f in failures]
        if not failures:  # all skipped: until the first drained is enabled or probed
            opens = [DRAIN_RECHECK if n in self._drained else self._opens_in(n) for n in names]
            waits = [max(0.1, min(opens))]
        if all(w is not None for w in waits):
            return Failed(why, True, retry_after=min(w for w in waits if w is not None))
        return Failed(why, True)

    def _down(self, name: str) -> str | None:
        """Why the connector cannot take anything now (SMPP: no bound link), or None."""
        connector = self._connectors[name]
        if getattr(connector, "bound_links", None) == 0:
            why = getattr(connector, "down_reason", "")
            what = getattr(connector, "down_summary", "not bound to the SMSC")
            return f"{name}: {what} ({why})" if why else f"{name}: {what}"
        return None

    def _opens_in(self, name: str) -> float:
        circuit = self._circuits.get(name)
        return DRAIN_RECHECK if circuit is None else circuit.opens_in()

    async def _send_one(self, name: str, outbound: Outbound) -> SendResult:
        traffic = self._traffic[name]
        traffic.in_flight += 1
        try:
            result = await self._connectors[name].send(outbound)
        except Exception as exc:  # a connector bug or network error: it may have gone out
            log.warning("connector %s failed for %s: %r", name, outbound.message_id, exc)
            result = Failed(f"connector error: {exc!r}", retryable=True, maybe_taken=True)
        finally:
            traffic.in_flight -= 1
        traffic.ended(result, self._clock())
        metrics.connector_sends(name, send_label(result)).inc()
        return result

    # -- the operator's view ---------------------------------------------------------

    def drain(self, names: Iterable[str]) -> None:
        """The connectors the operator drained (from the store): routes skip them."""
        drained = frozenset(names) & self._connectors.keys()
        for name in drained - self._drained:
            log.warning("connector %s: drained by the operator; routes skip it", name)
        for name in self._drained - drained:
            log.warning("connector %s: enabled by the operator", name)
        self._drained = drained

    def reports(self) -> list[ConnectorReport]:
        """What this process sees of each of its connectors."""
        now = self._clock()
        return [self._report(name, now) for name in sorted(self._connectors)]

    def _report(self, name: str, now: float) -> ConnectorReport:
        links = getattr(self._connectors[name], "bound_links", None)
        circuit = self._circuits.get(name)
        if name in self._drained:
            state = "drained"
        elif circuit is not None and circuit.is_open:
            state = "circuit-open"
        elif links == 0:
            state = "down"
        else:
            state = "up"
        t = self._traffic[name]
        return ConnectorReport(
            name,
            state,
            links if isinstance(links, int) else None,
            t.in_flight,
            t.sent.total(now),
            t.errors.total(now),
            t.last_error,
            t.last_error_at,
        )

    def _keep_on(self, key: tuple[str, int], name: str) -> None:
        self._sticky[key] = name
        if len(self._sticky) > _STICKY_MAX:
            del self._sticky[next(iter(self._sticky))]


def send_label(result: SendResult) -> str:
    """The `result` label of the send counters."""
    if isinstance(result, Failed):
        if result.retry_after is not None:
            return "unavailable"
        return "failed" if result.retryable else "rejected"
    return "accepted"
