"""What an SMSBAT upstream is sent and what is read back (channels.smsbat.wire), and its
webhooks as `/callbacks/{connector}` reads them (channels.smsbat.callbacks)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from batgate.channels.base import CallbackNews, CallbackRefused, CarrierCall, Outbound
from batgate.channels.smsbat import wire
from batgate.channels.smsbat.callbacks import SmsbatWebhooks
from batgate.config import SmsbatSettings
from batgate.domain.inbound import InboundText
from batgate.domain.messages import MessageType, Step
from batgate.domain.outcomes import CarrierCost, CarrierId, PartReceipt
from batgate.domain.status import ChannelStatus
from batgate.webhooks import signature_headers

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIzNDU2"
OTHER = "whsec_" + "b3RoZXItb3RoZXItb3RoZXItNjU0MzIxMDk4"


def outbound(mtype: MessageType, text: str | None, data: dict[str, Any] | None) -> Outbound:
    step = Step(mtype, "+380501234567", "shop", text, data, 600, 1)
    return Outbound("m1", step, attempt=2, index=1)


CAROUSEL = {"carousel": {"items": [{"title": "a", "imageUrl": "https://x/y.png"}]}}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            outbound(MessageType.SMS, "Hi", None),
            {"type": "sms", "text": "Hi"},
        ),
        (
            outbound(MessageType.VIBER_CAROUSEL, None, CAROUSEL),
            {"type": "viber_carousel", "messageData": CAROUSEL},
        ),
        (
            outbound(MessageType.FLASHCALL, None, {"callerId": "+380501112233"}),
            {"type": "flashcall", "messageData": {"callerId": "+380501112233"}},
        ),
    ],
)
def test_a_step_is_one_upstream_message_its_data_unchanged(
    message: Outbound, expected: dict[str, Any]
) -> None:
    common = {"from": "shop", "to": "+380501234567", "ttl": 600, "customerMessageId": "m1.1"}
    assert wire.upstream_message(message) == common | expected


@pytest.mark.parametrize(
    ("reference", "step"),
    [
        ("abc.0", ("abc", 0)),
        ("a.b.12", ("a.b", 12)),
        ("abc", None),
        (".1", None),
        ("abc.", None),
        ("abc.x", None),
        ("abc.²", None),
        (7, None),
        (None, None),
    ],
)
def test_a_customer_message_id_names_our_message_and_step(
    reference: object, step: tuple[str, int] | None
) -> None:
    assert wire.step_of(reference) == step


ACCEPTED = {"messageId": "u1", "status": "accepted", "parts": 1}
REJECTED = {
    "messageId": None,
    "status": "rejected",
    "error": {"code": "INVALID_RECIPIENT", "message": "to: not a number"},
}


@pytest.mark.parametrize(
    ("answer", "count", "read"),
    [
        ({"messages": [ACCEPTED]}, 1, [wire.Taken("u1")]),
        ({"messages": [{**ACCEPTED, "messageId": 17}]}, 1, [wire.Taken("17")]),
        (
            {"messagelistId": 3, "messages": [REJECTED, ACCEPTED]},
            2,
            [wire.Refused("INVALID_RECIPIENT", "to: not a number"), wire.Taken("u1")],
        ),
        (
            {"messages": [{"status": "rejected"}]},
            1,
            [wire.Refused("REJECTED", "rejected by the upstream")],
        ),
    ],
)
def test_the_send_answer_is_read_per_message(answer: Any, count: int, read: list[Any]) -> None:
    assert wire.send_answer(answer, count) == read


@pytest.mark.parametrize(
    ("answer", "count"),
    [
        ({"messages": [ACCEPTED]}, 2),
        ({"messages": "no"}, 1),
        ([ACCEPTED], 1),
        ({"messages": [{"status": "accepted"}]}, 1),
        ({"messages": [{"status": "queued", "messageId": "u"}]}, 1),
        ({"messages": [7]}, 1),
    ],
)
def test_an_answer_of_another_shape_is_unreadable(answer: Any, count: int) -> None:
    with pytest.raises(wire.Unreadable):
        wire.send_answer(answer, count)


def receipt(status: ChannelStatus) -> PartReceipt:
    return PartReceipt(CarrierId("u1"), status, f"upstream status {status.value}")


@pytest.mark.parametrize(
    ("document", "news"),
    [
        (
            {"messageId": "u1", "deliverystatus": "processing", "customerMessageId": "m.0"},
            wire.News(None, None),
        ),
        (
            {
                "messageId": "u1",
                "deliverystatus": "delivered",
                "cost": 0.05,
                "customerMessageId": "m.0",
            },
            wire.News(receipt(ChannelStatus.DELIVERED), CarrierCost("m", 0, 0.05, "EUR")),
        ),
        (
            {
                "messageId": "u1",
                "deliverystatus": "delivered",
                "cost": 2.05,
                "billAmount": 2.05,
                "billCurrency": "UAH",
                "customerMessageId": "m.2",
            },
            wire.News(receipt(ChannelStatus.DELIVERED), CarrierCost("m", 2, 2.05, "UAH")),
        ),
        (
            {"messageId": "u1", "deliverystatus": "undeliverable", "cost": 0},
            wire.News(receipt(ChannelStatus.UNDELIVERABLE), None),
        ),
        (
            {"messageId": "u1", "deliverystatus": "permanenterror", "customerMessageId": "m.1"},
            wire.News(receipt(ChannelStatus.PERMANENTERROR), None),
        ),
    ],
)
def test_a_status_gives_the_steps_receipt_and_carrier_cost(
    document: dict[str, Any], news: wire.News
) -> None:
    assert wire.news_of(document, "EUR") == news


def settings(**extra: Any) -> SmsbatSettings:
    table = {"kind": "smsbat", "url": "http://127.0.0.1:9/", "api_key": "k", **extra}
    return SmsbatSettings.model_validate(table)


def call(body: bytes, headers: dict[str, str], method: str = "POST") -> CarrierCall:
    return CarrierCall(method, headers, (), body)


EVENT = json.dumps(
    {"messageId": "u1", "deliverystatus": "delivered", "cost": 0.03, "customerMessageId": "m.0"}
).encode()


def test_a_signed_webhook_brings_the_receipt_and_the_cost() -> None:
    reader = SmsbatWebhooks("up", settings(webhook_secret=SECRET, currency="PLN"))
    news = reader.read(call(EVENT, signature_headers([SECRET], "e1", int(time.time()), EVENT)))
    assert news.receipts == (receipt(ChannelStatus.DELIVERED),)
    assert news.costs == (CarrierCost("m", 0, 0.03, "PLN"),)


@pytest.mark.parametrize(
    ("secrets", "age", "method", "status"),
    [
        (None, 0, "POST", 401),
        ([OTHER], 0, "POST", 401),
        ([SECRET], 600, "POST", 401),
        ([SECRET], -600, "POST", 401),
        ([SECRET], 0, "GET", 405),
    ],
    ids=["unsigned", "another secret", "stale", "from the future", "GET"],
)
def test_a_webhook_not_the_upstreams_is_refused(
    secrets: list[str] | None, age: int, method: str, status: int
) -> None:
    # Signed when the test runs (not when it is collected: a long run made "from the
    # future" a timestamp of the past, and the case passed for the wrong reason).
    now = int(time.time())
    headers = {} if secrets is None else signature_headers(secrets, "e1", now - age, EVENT)
    reader = SmsbatWebhooks("up", settings(webhook_secret=SECRET))
    with pytest.raises(CallbackRefused) as refused:
        reader.read(call(EVENT, headers, method))
    assert refused.value.status == status


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {
                "event": "inbound",
                "inboundId": 7,
                "from": "+380501234567",
                "to": "Shop",
                "text": "Yes",
                "parts": 2,
                "incomplete": True,
            },
            InboundText("+380501234567", "Shop", "Yes", 2, True, "7"),
        ),
        (
            {"event": "inbound", "from": "380501234567", "to": "1234", "text": "", "parts": True},
            InboundText("380501234567", "1234", "", 1, False, None),
        ),
        ({"event": "inbound", "from": "+380501234567", "to": "Shop"}, None),  # no text
        ({"event": "inbound", "from": 380501234567, "to": "Shop", "text": "x"}, None),
    ],
)
def test_an_inbound_event_brings_an_inbound_message(
    event: dict[str, Any], expected: InboundText | None
) -> None:
    body = json.dumps(event).encode()
    reader = SmsbatWebhooks("up", settings(webhook_secret=SECRET))
    signed = call(body, signature_headers([SECRET], "in_7", int(time.time()), body))
    if expected is None:
        with pytest.raises(CallbackRefused) as refused:
            reader.read(signed)
        assert refused.value.status == 400
    else:
        assert reader.read(signed) == CallbackNews(inbound=(expected,))


def test_a_signed_webhook_of_another_shape_is_a_bad_request() -> None:
    body = b'{"hello": "world"}'
    reader = SmsbatWebhooks("up", settings(webhook_secret=SECRET))
    with pytest.raises(CallbackRefused) as refused:
        reader.read(call(body, signature_headers([SECRET], "e1", int(time.time()), body)))
    assert (refused.value.status, refused.value.code) == (400, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        ({"url": "ftp://x"}, r"connectors\.up\.url"),
        ({"api_key": ""}, r"connectors\.up\.api_key"),
        ({"webhook_secret": "secret"}, r"connectors\.up\.webhook_secret"),
        ({"batch_size": 0}, r"connectors\.up\.batch_size"),
        ({"batch_window": -1}, r"connectors\.up\.batch_window"),
        ({"typo": 1}, r"connectors\.up\.typo: not a known setting"),
        ({"timeout": 30}, r"connectors\.up\.timeout: dispatcher\.lease_seconds"),
    ],
)
def test_a_bad_table_stops_start_up_naming_the_key(table: dict[str, Any], complaint: str) -> None:
    from batgate.config import load_settings

    up = {"kind": "smsbat", "url": "http://127.0.0.1:9", "api_key": "k", **table}
    with pytest.raises(ValueError, match=complaint):
        load_settings(connectors={"up": up})


def test_polling_starts_sooner_without_webhooks() -> None:
    assert settings().polls_after == 2.0
    assert settings(webhook_secret=SECRET).polls_after == 60.0
    assert settings(webhook_secret=SECRET, poll_after=5).polls_after == 5.0
