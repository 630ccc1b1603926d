"""The process's Prometheus metrics: what this process did since it started.

Every process (`serve`, `serve --no-workers`, `worker`) counts its own work and
serves its own `/metrics`; Prometheus adds them up. The instruments are created
unregistered and put into a fresh registry per exporter (`build_registry`), next
to the process collectors and the database gauges (:mod:`.backlog`), so that an
app built twice in one process (the tests do) never registers a name twice.

Label children are bound once and kept: on the hot status path a request costs
one dict look-up and one `observe` (~0.6 µs), never a `.labels()` call.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from batgate import __version__

M = TypeVar("M", bound=MetricWrapperBase)

HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# Methods outside this set are counted as "other": clients choose the method, and
# every distinct label value is a new time series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of requests no route matched

BUILD = Info("batgate_build", "The running batgate version.", registry=None)
BUILD.info({"version": __version__})

HTTP_REQUESTS = Histogram(
    "batgate_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, templated route and status code.",
    ("method", "route", "status"),
    buckets=HTTP_BUCKETS,
    registry=None,
)
CHANNEL_SENDS = Counter(
    "batgate_channel_sends",
    "Messages handed to a channel's connector, by channel and result "
    "(accepted; rejected: refused for good; failed: to be retried; unavailable: the "
    "carrier could not be reached or throttled us, the message waits without using an attempt).",
    ("channel", "result"),
    registry=None,
)
MESSAGE_STATUSES = Counter(
    "batgate_message_statuses",
    "Delivery statuses entered by messages (processing and the final ones), by status "
    "and the channel of the step in use.",
    ("status", "channel"),
    registry=None,
)
DISPATCHER_LAG = Histogram(
    "batgate_dispatcher_lag_seconds",
    "How late due messages were claimed: claim time minus due time.",
    buckets=LAG_BUCKETS,
    registry=None,
)
RECEIPT_LAG = Histogram(
    "batgate_receipt_lag_seconds",
    "How late announced receipts were applied: the time of the write minus the receipt's due time.",
    buckets=LAG_BUCKETS,
    registry=None,
)
WEBHOOK_DELIVERIES = Counter(
    "batgate_webhook_deliveries",
    "Webhook delivery attempts by outcome (delivered; retrying; failed: given up; "
    "disabled: the endpoint answered 410 and was switched off).",
    ("outcome",),
    registry=None,
)
WEBHOOK_FAILURES = Counter(
    "batgate_webhook_failures",
    "Failed webhook delivery attempts by reason (timeout, connection, http_status, no_url,"
    " refused: a callbackUrl pointing inside).",
    ("reason",),
    registry=None,
)

CONNECTOR_SENDS = Counter(
    "batgate_connector_sends",
    "Hand-overs tried on each connector, by result (as batgate_channel_sends; a hand-over "
    "passed on to the next connector of its route counts once on each connector tried).",
    ("connector", "result"),
    registry=None,
)
CIRCUIT_OPENED = Counter(
    "batgate_connector_circuit_opened",
    "Times a connector's circuit opened (circuit_errors hand-overs in a row it could not "
    "take): routes with another connector skip it for circuit_cooldown seconds.",
    ("connector",),
    registry=None,
)
CONNECTOR_IN_FLIGHT = Gauge(
    "batgate_connector_in_flight",
    "Hand-overs under way on each connector in this process right now.",
    ("connector",),
    registry=None,
)
CONNECTOR_STATE = Gauge(
    "batgate_connector_state",
    "Each connector's state as this process sees it: 1 for its state (up, down, "
    "circuit-open, drained), 0 for the others (batgate connectors shows all processes).",
    ("connector", "state"),
    registry=None,
)
SMPP_BOUND = Gauge(
    "batgate_smpp_bound_connections",
    "SMPP connections bound to the carrier's SMSC right now, per connector.",
    ("connector",),
    registry=None,
)
SMPP_BIND_FAILURES = Counter(
    "batgate_smpp_bind_failures",
    "Binds or connects that failed, per connector and reason (an SMPP status name, "
    "or connect / timeout).",
    ("connector", "reason"),
    registry=None,
)
SMPP_SUBMITS = Counter(
    "batgate_smpp_submits",
    "submit_sm sent, per connector and answer (ok, an SMPP status name, or no_answer).",
    ("connector", "result"),
    registry=None,
)
SMPP_RESENDS = Counter(
    "batgate_smpp_resends",
    "submit_sm sent again because the first had no answer (its connection was lost or "
    "the answer timed out): the SMSC may have taken it twice.",
    ("connector",),
    registry=None,
)
SMPP_RECEIPTS = Counter(
    "batgate_smpp_receipts",
    "Delivery receipts from the SMSC, per connector and SMPP state (DELIVERED, UNDELIVERABLE, …).",
    ("connector", "state"),
    registry=None,
)
INBOUND_MESSAGES = Counter(
    "batgate_inbound_messages",
    "Inbound messages stored, per connector they came by and whether an account owns "
    "their recipient (route: routed or unrouted).",
    ("connector", "route"),
    registry=None,
)
SMPP_INBOUND_OTHER = Counter(
    "batgate_smpp_inbound_other",
    "deliver_sm / data_sm from the SMSC that look like delivery receipts but name no "
    "message: acknowledged and dropped.",
    ("connector",),
    registry=None,
)
SMPP_INBOUND_MESSAGES = Counter(
    "batgate_smpp_inbound_messages",
    "Mobile-originated messages from the SMSC, their parts put together, per connector and "
    "state (complete; incomplete: some parts never came within mo_reassembly_timeout). "
    "Counted as handed to the store: one the SMSC sends again after a failed store counts again.",
    ("connector", "state"),
    registry=None,
)
MESSAGES_ABANDONED = Counter(
    "batgate_messages_abandoned",
    "Messages ended permanenterror because their processing kept failing (claimed again "
    "after their lease ran out more than dispatcher.max_reclaims times).",
    registry=None,
)
RETENTION_REMOVED = Counter(
    "batgate_retention_removed",
    "Records removed (or redacted) by retention, by kind.",
    ("kind",),
    registry=None,
)
AUTH_FAILURES = Counter(
    "batgate_auth_failures",
    "Failed logins to /bat/*, by method (api_key, password) and reason (unknown key, wrong "
    "password, malformed, disabled).",
    ("method", "reason"),
    registry=None,
)
AUTH_THROTTLED = Counter(
    "batgate_auth_throttled",
    "Logins answered 429 before any check: too many failures from the address or for the "
    "username, or too many password checks waiting (busy).",
    ("scope",),
    registry=None,
)

_PROCESS_WIDE: tuple[Collector, ...] = (
    BUILD,
    HTTP_REQUESTS,
    CHANNEL_SENDS,
    CONNECTOR_SENDS,
    CIRCUIT_OPENED,
    CONNECTOR_IN_FLIGHT,
    CONNECTOR_STATE,
    MESSAGE_STATUSES,
    DISPATCHER_LAG,
    RECEIPT_LAG,
    WEBHOOK_DELIVERIES,
    WEBHOOK_FAILURES,
    SMPP_BOUND,
    SMPP_BIND_FAILURES,
    SMPP_SUBMITS,
    SMPP_RESENDS,
    SMPP_RECEIPTS,
    SMPP_INBOUND_OTHER,
    SMPP_INBOUND_MESSAGES,
    INBOUND_MESSAGES,
    AUTH_FAILURES,
    AUTH_THROTTLED,
    RETENTION_REMOVED,
    MESSAGES_ABANDONED,
)


class Family(Generic[M]):
    """The children of a labelled metric, each bound on first use and kept."""

    def __init__(self, metric: M) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


channel_sends = Family(CHANNEL_SENDS)
connector_sends = Family(CONNECTOR_SENDS)
circuit_opened = Family(CIRCUIT_OPENED)
connector_in_flight = Family(CONNECTOR_IN_FLIGHT)
connector_state = Family(CONNECTOR_STATE)
message_statuses = Family(MESSAGE_STATUSES)
webhook_deliveries = Family(WEBHOOK_DELIVERIES)
webhook_failures = Family(WEBHOOK_FAILURES)
smpp_bound = Family(SMPP_BOUND)
smpp_bind_failures = Family(SMPP_BIND_FAILURES)
smpp_submits = Family(SMPP_SUBMITS)
smpp_resends = Family(SMPP_RESENDS)
smpp_receipts = Family(SMPP_RECEIPTS)
auth_failures = Family(AUTH_FAILURES)
auth_throttled = Family(AUTH_THROTTLED)
retention_removed = Family(RETENTION_REMOVED)
smpp_inbound_other = Family(SMPP_INBOUND_OTHER)
inbound_messages = Family(INBOUND_MESSAGES)
smpp_inbound_messages = Family(SMPP_INBOUND_MESSAGES)


def method_label(method: str) -> str:
    return method if method in _METHODS else "other"


class RouteTimer:
    """The request-duration histogram of one method and route, a child per status."""

    def __init__(self, method: str, route: str) -> None:
        self.method = method_label(method)
        self.route = route
        self._by_status: dict[int, Histogram] = {}

    def observe(self, status: int, seconds: float) -> None:
        child = self._by_status.get(status)
        if child is None:
            child = HTTP_REQUESTS.labels(self.method, self.route, str(status))
            self._by_status[status] = child
        child.observe(seconds)


def build_registry(*collectors: Collector) -> CollectorRegistry:
    """A registry of the process-wide metrics, the process collectors and `collectors`."""
    # No `…_created` series: in the text format they are one more series per
    # counter and histogram child, and Prometheus spots counter resets without them.
    disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    for collector in (*_PROCESS_WIDE, *collectors):
        registry.register(collector)
    return registry
