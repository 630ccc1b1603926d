"""The table of cases: every SDK call, against Client and AsyncClient, in-process and over HTTP.

Each test runs four times: {sync, async} × {the app in-process, a live `batgate
serve`}. Messages really go through the engine and the sandbox carrier.
"""

from __future__ import annotations

import builtins
import uuid
from typing import Any

import pytest
from client_support import PASSWORD, MakeClient, Target

from batgate.client import (
    AuthenticationError,
    Button,
    CarouselItem,
    ChannelStatus,
    DeliveryStatus,
    DeliveryTimeoutError,
    FallbackStatus,
    IdempotencyKeyReusedError,
    Message,
    MessageRejectedError,
    NotFoundError,
    RcsButton,
    ValidationError,
    flashcall,
    rcs,
    sms,
    viber_carousel,
    viber_otp,
    viber_promo,
    viber_survey,
    viber_trans,
)

OK = "+380501234567"
UNDELIVERABLE = "+380501230001"
PERMANENT = "+380501230002"
NO_VIBER = "+380501230003"
SLOW = "+380501230004"


def unique() -> str:
    return uuid.uuid4().hex


# -- send ------------------------------------------------------------------------------------


def test_send_sms_answers_the_accepted_entry(client: Any) -> None:
    entry = client.send_sms(OK, "Order #1001 confirmed", customer_message_id="order-1001")
    assert entry.accepted and entry.status == "accepted"
    assert entry.message_id
    assert (entry.parts, entry.to, entry.customer_message_id) == (1, OK, "order-1001")


def test_send_reports_each_message_in_input_order_with_spec_codes(client: Any) -> None:
    result = client.send(
        [
            sms(OK, "fine"),
            sms("+38050", "bad number"),
            {"type": "sms", "to": OK, "from": "Shop"},  # a wire dict, without text
            sms(OK, "x" * 2000),
            sms(OK, "no sender", sender="has space"),
            viber_promo(OK, "promo", fallback=sms("+1", "bad step")),
            Message(type="fax", to=OK, text="hi"),
            sms(OK, "two parts " * 20),
        ]
    )
    assert isinstance(result.messagelist_id, int)
    codes = [e.error_code for e in result.entries]
    assert codes == [
        None,
        "INVALID_RECIPIENT",
        "MISSING_TEXT",
        "MESSAGE_TOO_LONG",
        "INVALID_SENDER",
        "INVALID_FALLBACK",
        "INVALID_TYPE",
        None,
    ]
    assert [e.index for e in result.entries] == list(range(8))
    assert [e.accepted for e in result.entries] == [c is None for c in codes]
    assert all(e.message_id is None and e.error_message for e in result.rejected)
    assert result.message_ids == [result.entries[0].message_id, result.entries[7].message_id]
    assert result.entries[7].parts == 2


def test_send_one_raises_the_rejection_with_its_code(client: Any) -> None:
    with pytest.raises(MessageRejectedError) as caught:
        client.send_sms("+38050", "bad number")
    assert isinstance(caught.value, ValidationError)
    assert caught.value.code == "INVALID_RECIPIENT"
    assert caught.value.entry.to == "+38050"


def test_the_client_sender_is_the_default_and_a_message_sender_wins(
    make_client: MakeClient,
) -> None:
    client = make_client(sender=None)
    entry = client.send([sms(OK, "no sender at all")]).entries[0]
    assert entry.error_code == "INVALID_SENDER"
    client = make_client(sender="Default")
    assert client.send([sms(OK, "default sender")]).entries[0].accepted
    assert client.send([sms(OK, "own sender", sender="Own")]).entries[0].accepted


BUILT: list[tuple[str, Message]] = [
    ("sms", sms(OK, "hello")),
    (
        "viber_promo",
        viber_promo(
            OK,
            "20% off",
            image="https://example.com/a.png",
            button=Button("Shop", "https://example.com"),
        ),
    ),
    ("viber_trans", viber_trans(OK, file_url="https://example.com/i.pdf", file_name="i.pdf")),
    (
        "viber_carousel",
        viber_carousel(
            OK,
            [
                CarouselItem("A", "https://example.com/a.png", Button("Buy", "https://e.com/a")),
                CarouselItem(
                    "B",
                    "https://example.com/b.png",
                    Button("Buy", "https://e.com/b"),
                    Button("More", "https://e.com/more"),
                ),
            ],
        ),
    ),
    ("viber_survey", viber_survey(OK, "How was it?", ["good", "bad"])),
    ("viber_otp code", viber_otp(OK, code="123456", validity=300)),
    (
        "viber_otp template",
        viber_otp(
            OK, template_id=str(uuid.uuid4()), template_lang="en", template_params={"code": "1234"}
        ),
    ),
    (
        "rcs",
        rcs(
            OK,
            "hello",
            media_url="https://example.com/a.png",
            buttons=[
                RcsButton("Open", url="https://example.com"),
                RcsButton("Call", "dial", extra={"phoneNumber": "+380501234567"}),
            ],
        ),
    ),
    ("flashcall", flashcall(OK, "+380441234567")),
    (
        "fallback chain",
        viber_promo(OK, "promo", fallback=[rcs(None, "rcs step"), sms(None, "sms step")]),
    ),
]


@pytest.mark.parametrize("message", [m for _, m in BUILT], ids=[n for n, _ in BUILT])
def test_every_builder_makes_a_message_the_gateway_accepts(client: Any, message: Message) -> None:
    entry = client.send_one(message)
    assert entry.accepted, entry
    if message.type == "flashcall":
        assert (entry.caller_id, entry.pattern) == ("+380441234567", "***234567")
        assert isinstance(entry.ttl, int)


def test_an_idempotency_key_replays_the_first_answer(client: Any) -> None:
    key = f"order-{unique()}"
    first = client.send([sms(OK, "once")], idempotency_key=key)
    again = client.send([sms(OK, "once")], idempotency_key=key)
    assert again == first
    with pytest.raises(IdempotencyKeyReusedError) as caught:
        client.send([sms(OK, "a different body")], idempotency_key=key)
    assert (caught.value.status_code, caught.value.code) == (422, "IDEMPOTENCY_KEY_REUSED")


# -- status and waiting ----------------------------------------------------------------------


def test_status_has_every_field_and_wait_returns_the_final_one(client: Any) -> None:
    entry = client.send_sms(OK, "hello", customer_message_id="c-1")
    first = client.status(entry.message_id)
    assert first.message_id == entry.message_id
    assert first.status in DeliveryStatus
    final = client.wait_for_delivery(entry.message_id, timeout=20)
    assert final.is_final and final.delivered and final.status is DeliveryStatus.DELIVERED
    assert isinstance(final.messagelist_id, int)
    assert (final.parts_count, final.cost, final.type, final.to) == (1, 0.05, "sms", OK)
    assert final.customer_message_id == "c-1"
    assert (final.fallbacks, dict(final.extended_statuses), final.rate) == ((), {}, None)
    assert final.raw["deliverystatus"] == "delivered"


def test_a_fallback_status_carries_the_extended_fields(client: Any) -> None:
    entry = client.send_one(viber_promo(NO_VIBER, "promo", fallback=sms(None, "promo by sms")))
    final = client.wait_for_delivery(entry.message_id, timeout=20)
    assert final.delivered
    assert final.fallbacks == (FallbackStatus("sms", ChannelStatus.DELIVERED),)
    assert dict(final.extended_statuses) == {
        "viber": ChannelStatus.UNDELIVERABLE,
        "sms": ChannelStatus.DELIVERED,
    }
    assert (final.rate, final.rate_amount, final.rate_currency) == (0.05, 0.05, "USD")
    assert (final.bill_amount, final.bill_currency, final.cost) == (0.05, "USD", 0.05)


@pytest.mark.parametrize(
    ("to", "final"),
    [(UNDELIVERABLE, DeliveryStatus.UNDELIVERABLE), (PERMANENT, DeliveryStatus.PERMANENTERROR)],
)
def test_a_failed_delivery_is_returned_not_raised(
    client: Any, to: str, final: DeliveryStatus
) -> None:
    entry = client.send_sms(to, "will fail")
    status = client.wait_for_delivery(entry.message_id, timeout=20)
    assert status.status is final and status.is_final and not status.delivered
    assert status.cost == 0.0


def test_wait_times_out_with_the_last_status_seen(client: Any) -> None:
    entry = client.send_sms(SLOW, "slow")
    with pytest.raises(DeliveryTimeoutError) as caught:
        client.wait_for_delivery(entry.message_id, timeout=0.3)
    error = caught.value
    assert isinstance(error, builtins.TimeoutError)
    assert error.last_status is not None
    assert error.last_status.message_id == entry.message_id
    assert error.last_status.status in (DeliveryStatus.SCHEDULED, DeliveryStatus.PROCESSING)
    assert entry.message_id in str(error)


def test_wait_for_all_answers_in_input_order(client: Any) -> None:
    result = client.send([sms(UNDELIVERABLE, "a"), sms(OK, "b"), sms(PERMANENT, "c")])
    seen: list[int] = []
    final = client.wait_for_all(
        result.message_ids, timeout=20, on_progress=lambda s: seen.append(len(s))
    )
    assert [s.message_id for s in final] == result.message_ids
    assert [s.status for s in final] == [
        DeliveryStatus.UNDELIVERABLE,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.PERMANENTERROR,
    ]
    assert seen and set(seen) == {3}


def test_wait_for_all_times_out_with_every_last_status(client: Any) -> None:
    result = client.send([sms(OK, "fast"), sms(SLOW, "slow")])
    client.wait_for_delivery(result.message_ids[0], timeout=30)  # however busy the machine
    with pytest.raises(DeliveryTimeoutError) as caught:
        client.wait_for_all(result.message_ids, timeout=1)
    last = caught.value.last_statuses
    assert list(last) == result.message_ids
    fast, slow = (last[mid] for mid in result.message_ids)
    assert fast is not None and fast.delivered
    assert slow is not None and not slow.is_final


def test_statuses_keep_input_order_and_report_errors_per_id(client: Any) -> None:
    ids = client.send([sms(OK, f"m{i}") for i in range(12)]).message_ids
    asked = [ids[0], "no-such-id", *ids[1:], ids[0]]
    results = client.statuses(asked, concurrency=4, rate_limit=200, burst=5)
    assert [r.message_id for r in results] == asked
    assert isinstance(results[1].error, NotFoundError) and results[1].status is None
    assert all(
        r.ok and r.status.message_id == r.message_id for i, r in enumerate(results) if i != 1
    )


def test_an_unknown_message_is_not_found(client: Any) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.status("no-such-message")
    assert (caught.value.status_code, caught.value.code) == (404, "NOT_FOUND")


def test_another_accounts_message_is_not_found(make_client: MakeClient, target: Target) -> None:
    entry = make_client().send_sms(OK, "alice's")
    bob = make_client(api_key=target.bob_key)
    with pytest.raises(NotFoundError):
        bob.status(entry.message_id)


# -- authentication ------------------------------------------------------------------------


def test_every_way_to_authenticate_works(make_client: MakeClient, target: Target) -> None:
    for options in (
        {"api_key": target.alice_key},
        {"api_key": target.alice_key, "key_as_password": True},
        {"username": target.alice, "password": PASSWORD},
    ):
        client = make_client(**options)
        entry = client.send_sms(OK, "hello")
        assert client.status(entry.message_id).message_id == entry.message_id


@pytest.mark.parametrize("call", ["send", "status", "statuses", "report", "wait"])
def test_wrong_credentials_raise_authentication_error(make_client: MakeClient, call: str) -> None:
    client = make_client(api_key="wrong-key")
    calls = {
        "send": lambda: client.send_sms(OK, "x"),
        "status": lambda: client.status("some-id"),
        "statuses": lambda: client.statuses(["a", "b"]),
        "report": lambda: client.report(1),
        "wait": lambda: client.wait_for_delivery("some-id"),
    }
    with pytest.raises(AuthenticationError) as caught:
        calls[call]()
    assert (caught.value.status_code, caught.value.code) == (401, "UNAUTHORIZED")


# -- report ------------------------------------------------------------------------------------


def test_report_counts_statuses_and_cost_of_a_list(client: Any) -> None:
    result = client.send([sms(OK, "a"), sms(OK, "b"), sms(UNDELIVERABLE, "c"), sms("+1", "bad")])
    client.wait_for_all(result.message_ids, timeout=20)
    report = client.report(result.messagelist_id)
    assert report.messagelist_id == result.messagelist_id
    assert report.total == 3
    assert dict(report.counts) == {
        "scheduled": 0,
        "processing": 0,
        "delivered": 2,
        "undeliverable": 1,
        "permanenterror": 0,
    }
    assert report.delivery_rate == pytest.approx(2 / 3)
    assert (report.cost, report.currency) == (pytest.approx(0.10), "USD")


def test_report_of_an_unknown_list_says_what_a_404_may_mean(client: Any) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.report(987654321)
    assert "batgate extension" in str(caught.value)
