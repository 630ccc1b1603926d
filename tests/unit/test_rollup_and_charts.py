"""The console's counting (domain.rollup) and its SVG charts (console.charts), pure."""

from __future__ import annotations

import re

import pytest

from batgate.console.charts import Series, line_chart, series_of
from batgate.domain.lifecycle import Progress
from batgate.domain.messages import MessageType, Step
from batgate.domain.records import MessageRecord
from batgate.domain.rollup import (
    RollupKey,
    bucket_of,
    bucket_upper_ms,
    by_hour,
    key_of,
    percentile_ms,
    summed,
)
from batgate.domain.status import ChannelStatus, DeliveryStatus


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [(0.0, 0), (0.0009, 0), (0.001, 1), (0.0015, 2), (0.05, 12), (1.0, 20), (3600.0, 44)],
)
def test_buckets_are_half_octaves_of_milliseconds(seconds: float, bucket: int) -> None:
    assert bucket_of(seconds) == bucket
    assert bucket_upper_ms(bucket) >= seconds * 1000


def test_a_percentile_is_its_buckets_upper_edge_within_19_percent() -> None:
    counts = {bucket_of(t / 1000): 1 for t in (10, 20, 40)} | {bucket_of(2.0): 97}
    assert percentile_ms({}, 0.5) is None
    p50, p99 = percentile_ms(counts, 0.5), percentile_ms(counts, 0.99)
    assert p50 is not None and 2000 <= p50 <= 2000 * 1.19
    assert p99 == p50
    assert percentile_ms({bucket_of(0.010): 99, bucket_of(5.0): 1}, 0.5) == bucket_upper_ms(
        bucket_of(0.010)
    )


def record(created: float, chain: tuple[MessageType, ...]) -> MessageRecord:
    steps = tuple(Step(t, "+380501234567", "Shop", "hi", None, 60, 1) for t in chain)
    progress = Progress(DeliveryStatus.PROCESSING, 0, (ChannelStatus.PROCESSING,), 0, None, 0)
    return MessageRecord(
        id="m",
        messagelist_id=1,
        account_id=7,
        customer_message_id=None,
        to="+380501234567",
        type=chain[0],
        chain=steps,
        callback_url=None,
        progress=progress,
        version=1,
        rate_micros=None,
        rate_currency=None,
        bill_micros=None,
        bill_currency="USD",
        created_at=created,
        updated_at=created,
    )


def test_a_final_message_is_counted_on_the_step_it_ended_on() -> None:
    r = record(1000.0, (MessageType.VIBER_PROMO, MessageType.SMS))
    final = Progress(
        DeliveryStatus.DELIVERED,
        1,
        (ChannelStatus.UNDELIVERABLE, ChannelStatus.DELIVERED),
        0,
        None,
        0,
        connector="smsc1",
    )
    key = key_of(r, final, 1000.0 + 125)
    assert key == RollupKey(18, 7, "sms", "smsc1", "delivered", bucket_of(125.0))
    unrouted = Progress(
        DeliveryStatus.PERMANENTERROR, 0, (ChannelStatus.PERMANENTERROR,), 0, None, 0
    )
    assert key_of(r, unrouted, 1060.0).connector == ""


def test_counts_by_minute_and_by_hour() -> None:
    keys = [RollupKey(m, 1, "sms", "c", "delivered", 10) for m in (60, 61, 61, 119, 120)]
    assert summed(keys)[RollupKey(61, 1, "sms", "c", "delivered", 10)] == 2
    hours = by_hour(keys)
    assert hours == {
        RollupKey(60, 1, "sms", "c", "delivered", 10): 4,
        RollupKey(120, 1, "sms", "c", "delivered", 10): 1,
    }


def test_a_chart_has_a_line_per_series_and_a_dot_per_count() -> None:
    slots = [0, 1, 2, 3]
    counts = {(0, "delivered"): 5, (2, "delivered"): 7, (3, "undeliverable"): 1}
    series = series_of(slots, counts, [("delivered", "ok"), ("undeliverable", "bad")])
    assert [s.values for s in series] == [[5, 0, 7, 0], [0, 0, 0, 1]]
    svg = line_chart(["a", "b", "c", "d"], series, "Final <messages>")
    assert svg.startswith("<svg") and "Final &lt;messages&gt;" in svg
    lines = re.findall(r'<polyline class="line (\w+)" data-series="(\w+)" points="([^"]+)"', svg)
    assert [(css, name, len(points.split())) for css, name, points in lines] == [
        ("ok", "delivered", 4),
        ("bad", "undeliverable", 4),
    ]
    assert svg.count("<circle") == 3  # one per non-zero count
    assert ">7<" in svg  # the top of the scale


def test_an_empty_window_draws_flat_lines() -> None:
    svg = line_chart(["x"], [Series("delivered", "ok", [0])], "nothing")
    assert "<polyline" in svg and "<circle" not in svg
