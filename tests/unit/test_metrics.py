"""Metrics: instruments and registries, the database gauges' cache, the engine's counting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from batgate import __version__
from batgate.config import Settings, load_settings
from batgate.domain.lifecycle import Progress, Transition, on_due, on_sent
from batgate.domain.messages import MessageType, Step
from batgate.domain.outcomes import Accepted, Failed, ScheduledReceipt, SendResult
from batgate.domain.records import MessageRecord
from batgate.domain.retry import RetryPolicy
from batgate.domain.status import ChannelStatus as CS
from batgate.engine.changes import count_applied
from batgate.engine.dispatcher import _count_claims
from batgate.engine.switchboard import send_label
from batgate.observability import metrics
from batgate.observability.backlog import BacklogGauges
from batgate.store.gauges import Backlog
from batgate.store.manager import Change

T0 = 1_000_000.0
RETRY = RetryPolicy((1.0,), jitter=0.0)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


# -- instruments and registries -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "label"),
    [("GET", "GET"), ("POST", "POST"), ("OPTIONS", "OPTIONS"), ("BREW", "other"), ("get", "other")],
)
def test_method_label(method: str, label: str) -> None:
    assert metrics.method_label(method) == label


def test_route_timer_counts_by_status() -> None:
    registry = metrics.build_registry()
    timer = metrics.RouteTimer("GET", "/test/timer/{id}")
    for status, seconds in [(200, 0.0004), (200, 0.003), (404, 0.2)]:
        timer.observe(status, seconds)
    count = "batgate_http_request_duration_seconds_count"
    bucket = "batgate_http_request_duration_seconds_bucket"
    labels = {"method": "GET", "route": "/test/timer/{id}"}
    assert sample(registry, count, **labels, status="200") == 2
    assert sample(registry, count, **labels, status="404") == 1
    assert sample(registry, bucket, **labels, status="200", le="0.001") == 1
    assert sample(registry, bucket, **labels, status="200", le="0.005") == 2
    assert sample(
        registry, "batgate_http_request_duration_seconds_sum", **labels, status="404"
    ) == (pytest.approx(0.2))


def test_route_timer_of_an_unknown_method() -> None:
    timer = metrics.RouteTimer("PROPFIND", "/test/odd")
    assert (timer.method, timer.route) == ("other", "/test/odd")


def test_family_binds_each_child_once() -> None:
    first = metrics.channel_sends("sms", "accepted")
    assert metrics.channel_sends("sms", "accepted") is first
    assert metrics.channel_sends("sms", "failed") is not first


def test_registries_can_be_built_many_times() -> None:
    # One per app or exporter: the process-wide instruments are shared, never re-registered.
    first, second = metrics.build_registry(), metrics.build_registry()
    names = {f.name for f in text_string_to_metric_families(generate_latest(second).decode())}
    assert {
        "batgate_build_info",
        "batgate_http_request_duration_seconds",
        "batgate_channel_sends",
        "batgate_message_statuses",
        "batgate_dispatcher_lag_seconds",
        "batgate_receipt_lag_seconds",
        "batgate_webhook_deliveries",
        "batgate_webhook_failures",
        "process_resident_memory_bytes",
        "python_info",
    } <= names
    assert sample(first, "batgate_build_info", version=__version__) == 1


# -- the database gauges ----------------------------------------------------------------


class Source:
    """Stands in for store.gauges.Gauges: counts reads, can fail or hang."""

    def __init__(self, reading: Backlog | None = None) -> None:
        self.reading = reading or Backlog(5, 2, T0 - 30, 7, T0 - 90)
        self.reads = 0
        self.error: Exception | None = None
        self.hang = 0.0

    async def backlog(self, now: float) -> Backlog:
        self.reads += 1
        if self.hang:
            await asyncio.sleep(self.hang)
        if self.error is not None:
            raise self.error
        return self.reading


class Clocks:
    def __init__(self) -> None:
        self.now = T0
        self.mono = 100.0

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


def collector(source: Source, clocks: Clocks, timeout: float = 1.0) -> BacklogGauges:
    gauges: Any = source
    return BacklogGauges(
        gauges,
        max_age=2.0,
        timeout=timeout,
        clock=lambda: clocks.now,
        monotonic=lambda: clocks.mono,
    )


def values(backlog: BacklogGauges) -> dict[str, float]:
    return {s.name: s.value for family in backlog.collect() for s in family.samples}


async def test_gauges_before_the_first_scrape() -> None:
    assert values(collector(Source(), Clocks())) == {}


async def test_gauges_values_and_ages_at_collection_time() -> None:
    clocks = Clocks()
    backlog = collector(Source(), clocks)
    await backlog.refresh()
    got = values(backlog)
    assert got["batgate_database_up"] == 1
    assert got["batgate_gauges_read_seconds"] == 0.0
    assert (got["batgate_queue_messages"], got["batgate_queue_due_messages"]) == (5, 2)
    assert got["batgate_queue_oldest_due_age_seconds"] == 30
    assert got["batgate_webhook_backlog_events"] == 7
    assert got["batgate_webhook_oldest_pending_age_seconds"] == 90
    # From the cache a second later: the same counts, ages a second older.
    clocks.advance(1.0)
    await backlog.refresh()
    got = values(backlog)
    assert (got["batgate_queue_oldest_due_age_seconds"], got["batgate_webhook_backlog_events"]) == (
        31,
        7,
    )


async def test_gauges_are_read_at_most_once_per_max_age() -> None:
    source, clocks = Source(), Clocks()
    backlog = collector(source, clocks)
    await asyncio.gather(*(backlog.refresh() for _ in range(5)))  # concurrent scrapes
    assert source.reads == 1
    clocks.advance(1.9)
    await backlog.refresh()
    assert source.reads == 1
    clocks.advance(0.2)
    await backlog.refresh()
    assert source.reads == 2


@pytest.mark.parametrize("trouble", ["error", "hang"])
async def test_gauges_when_the_database_fails(
    trouble: str, caplog: pytest.LogCaptureFixture
) -> None:
    source, clocks = Source(), Clocks()
    backlog = collector(source, clocks, timeout=0.05)
    if trouble == "error":
        source.error = OSError("connection refused")
    else:
        source.hang = 5.0
    await backlog.refresh()
    assert values(backlog).keys() == {"batgate_database_up", "batgate_gauges_read_seconds"}
    assert values(backlog)["batgate_database_up"] == 0
    assert "reading the database gauges failed" in caplog.text
    # The failure is cached like a reading; then the next scrape reads again.
    source.error, source.hang = None, 0.0
    await backlog.refresh()
    assert source.reads == 1
    clocks.advance(2.0)
    await backlog.refresh()
    assert values(backlog)["batgate_database_up"] == 1


@pytest.mark.parametrize(
    ("reading", "due_age", "pending_age"),
    [
        (Backlog(0, 0, None, 0, None), 0.0, 0.0),
        (Backlog(3, 0, T0 + 60, 1, T0), 0.0, 0.0),  # nothing due yet; an event just now
        (Backlog(3, 1, T0 - 2.5, 1, T0 - 4), 2.5, 4.0),
    ],
)
def test_backlog_ages(reading: Backlog, due_age: float, pending_age: float) -> None:
    assert (reading.oldest_due_age(T0), reading.oldest_pending_age(T0)) == (due_age, pending_age)


# -- what the dispatcher counts --------------------------------------------------------------

SMS = Step(MessageType.SMS, "+380501234567", "Shop", "hi", None, 600, 1)
VIBER = Step(MessageType.VIBER_PROMO, "+380501234567", "Shop", "hi", None, 600, 1)


def record(progress: Progress, *chain: Step) -> MessageRecord:
    return MessageRecord(
        id="m1",
        messagelist_id=1,
        account_id=1,
        customer_message_id=None,
        to=SMS.to,
        type=chain[0].type,
        chain=chain,
        callback_url=None,
        progress=progress,
        version=0,
        rate_micros=None,
        rate_currency=None,
        bill_micros=None,
        bill_currency="USD",
        created_at=T0,
        updated_at=T0,
    )


@pytest.mark.parametrize(
    ("result", "label"),
    [
        (Accepted("ref"), "accepted"),
        (Failed("busy", retryable=True), "failed"),
        (Failed("no such number", retryable=False), "rejected"),
    ],
)
def test_send_label(result: SendResult, label: str) -> None:
    assert send_label(result) == label


def handed(chain: tuple[Step, ...], receipt: CS) -> MessageRecord:
    """A message handed to its first channel, with a receipt announced for T0 + 2."""
    start = record(Progress.new(chain, T0), *chain)
    sent = on_sent(
        start.progress, Accepted("r", ScheduledReceipt(receipt, T0 + 2)), chain, RETRY, T0
    )
    return record(sent.progress, *chain)


def statuses(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for family in registry.collect():
        if family.name == "batgate_message_statuses":
            for s in family.samples:
                if s.name.endswith("_total"):
                    found[(s.labels["status"], s.labels["channel"])] = s.value
    return found


def delta(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def refused_on_viber() -> Change:
    start = record(Progress.new((VIBER, SMS), T0), VIBER, SMS)
    t = on_sent(start.progress, Failed("no", retryable=False), start.chain, RETRY, T0)
    return Change(start, t)


def receipt_applied(chain: tuple[Step, ...], receipt: CS) -> Change:
    r = handed(chain, receipt)
    t = on_due(r.progress, r.chain, T0 + 3)
    assert isinstance(t, Transition)
    return Change(r, t)


def sent_on_sms() -> Change:
    start = record(Progress.new((SMS,), T0), SMS)
    t = on_sent(start.progress, Accepted("r"), start.chain, RETRY, T0)
    return Change(start, t)


@pytest.mark.parametrize(
    ("change", "ok", "counted", "receipt_lags"),
    [
        (sent_on_sms(), True, {("processing", "sms"): 1}, 0),
        # Refused on Viber: processing on Viber, and the SMS step is next (no status).
        (refused_on_viber(), True, {("processing", "viber"): 1}, 0),
        (receipt_applied((SMS,), CS.DELIVERED), True, {("delivered", "sms"): 1}, 1),
        # Viber's receipt says undeliverable: the chain moves on to SMS, no status.
        (receipt_applied((VIBER, SMS), CS.UNDELIVERABLE), True, {}, 1),
        # Lost the compare-and-set: nothing was written, nothing is counted.
        (receipt_applied((SMS,), CS.DELIVERED), False, {}, 0),
    ],
    ids=["sent", "refused-viber", "receipt", "receipt-then-fallback", "lost-cas"],
)
def test_count_applied(
    change: Change, ok: bool, counted: dict[tuple[str, str], float], receipt_lags: int
) -> None:
    registry = metrics.build_registry()
    before = statuses(registry)
    lags = sample(registry, "batgate_receipt_lag_seconds_count")
    lag_sum = sample(registry, "batgate_receipt_lag_seconds_sum")
    count_applied([change], [ok], T0 + 3.5)
    assert delta(before, statuses(registry)) == counted
    assert sample(registry, "batgate_receipt_lag_seconds_count") - lags == receipt_lags
    # Applied at T0 + 3.5, due at T0 + 2.
    assert sample(registry, "batgate_receipt_lag_seconds_sum") - lag_sum == pytest.approx(
        1.5 * receipt_lags
    )


def test_count_applied_skips_releases() -> None:
    r = handed((SMS,), CS.DELIVERED)
    registry = metrics.build_registry()
    before = statuses(registry)
    count_applied([Change(r, None)], [False], T0 + 3)
    assert delta(before, statuses(registry)) == {}


def test_count_claims_observes_lateness() -> None:
    registry = metrics.build_registry()
    count = sample(registry, "batgate_dispatcher_lag_seconds_count")
    total = sample(registry, "batgate_dispatcher_lag_seconds_sum")
    late = record(Progress.new((SMS,), T0), SMS)  # due at T0
    _count_claims([late, late], T0 + 0.25)
    assert sample(registry, "batgate_dispatcher_lag_seconds_count") - count == 2
    assert sample(registry, "batgate_dispatcher_lag_seconds_sum") - total == pytest.approx(0.5)


# -- settings ------------------------------------------------------------------------


def test_metrics_settings_defaults() -> None:
    s = Settings()
    assert (s.metrics.enabled, s.metrics.cache_seconds, s.readiness_timeout) == (True, 2.0, 2.0)
    assert (s.metrics.worker_port, s.metrics.worker_host) == (None, "127.0.0.1")


def test_worker_flags_merge_with_metrics_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `batgate worker --metrics-port 9100` with BATGATE_METRICS__CACHE_SECONDS set.
    monkeypatch.setenv("BATGATE_METRICS__CACHE_SECONDS", "5")
    monkeypatch.setenv("BATGATE_METRICS__WORKER_PORT", "9000")
    s = load_settings(metrics={"worker_port": 9100})
    assert (s.metrics.worker_port, s.metrics.cache_seconds) == (9100, 5.0)


@pytest.mark.parametrize(
    "values",
    [
        {"metrics": {"worker_port": 0}},
        {"metrics": {"worker_port": 70000}},
        {"metrics": {"cache_seconds": -1}},
        {"readiness_timeout": 0},
    ],
)
def test_bad_metrics_settings(values: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Settings(**values)
