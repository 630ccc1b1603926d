"""The status response (SPEC §3) built from stored records: basic and extended fields."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from batgate.domain.documents import status_view
from batgate.domain.lifecycle import Progress
from batgate.domain.messages import MessageType, Step
from batgate.domain.records import MessageRecord
from batgate.domain.status import ChannelStatus as CS
from batgate.domain.status import DeliveryStatus as DS

TO = "+380501234567"
BASIC_KEYS = {"messagelistId", "messageId", "deliverystatus", "partscount", "type", "to"}
EXTENDED_KEYS = {
    "fallbacks",
    "extendedStatuses",
    "rate",
    "rateAmount",
    "rateCurrency",
    "billAmount",
    "billCurrency",
}


def step(mtype: MessageType, parts: int = 1) -> Step:
    return Step(mtype, TO, "Shop", "hello", None, 600, parts)


def record(
    chain: tuple[Step, ...],
    status: DS,
    steps: tuple[CS, ...],
    at_step: int = 0,
    rate: int | None = None,
    rate_currency: str | None = None,
    bill: int | None = None,
    bill_currency: str = "USD",
    customer_id: str | None = None,
) -> MessageRecord:
    progress = Progress(
        status=status,
        step=at_step,
        steps=steps,
        attempts=0,
        due_at=None if status.is_final else 10.0,
        deadline=610.0,
    )
    return MessageRecord(
        id="0123456789abcdef012345",
        messagelist_id=77,
        account_id=1,
        customer_message_id=customer_id,
        to=TO,
        type=chain[0].type,
        chain=chain,
        callback_url=None,
        progress=progress,
        version=3,
        rate_micros=rate,
        rate_currency=rate_currency,
        bill_micros=bill,
        bill_currency=bill_currency,
        created_at=10.0,
        updated_at=12.0,
    )


SMS3 = (step(MessageType.SMS, parts=3),)
VIBER_SMS = (step(MessageType.VIBER_PROMO), step(MessageType.SMS, parts=2))
VIBER_RCS_SMS = (step(MessageType.VIBER_TRANS), step(MessageType.RCS), step(MessageType.SMS))

# (id, record, expected body)
CASES: list[tuple[str, MessageRecord, dict[str, Any]]] = [
    (
        "scheduled-no-cost",
        record(SMS3, DS.SCHEDULED, (CS.SCHEDULED,)),
        {
            "messagelistId": 77,
            "messageId": "0123456789abcdef012345",
            "deliverystatus": "scheduled",
            "partscount": 3,
            "type": "sms",
            "to": TO,
        },
    ),
    (
        "processing-no-cost",
        record(SMS3, DS.PROCESSING, (CS.PROCESSING,), rate=50_000, rate_currency="USD"),
        {
            "messagelistId": 77,
            "messageId": "0123456789abcdef012345",
            "deliverystatus": "processing",
            "partscount": 3,
            "type": "sms",
            "to": TO,
        },
    ),
    (
        "delivered-cost",
        record(SMS3, DS.DELIVERED, (CS.DELIVERED,), rate=50_000, rate_currency="USD", bill=150_000),
        {
            "messagelistId": 77,
            "messageId": "0123456789abcdef012345",
            "deliverystatus": "delivered",
            "partscount": 3,
            "cost": 0.15,
            "type": "sms",
            "to": TO,
        },
    ),
    (
        "undeliverable-zero-cost",
        record(
            SMS3, DS.UNDELIVERABLE, (CS.UNDELIVERABLE,), rate=50_000, rate_currency="USD", bill=0
        ),
        {
            "messagelistId": 77,
            "messageId": "0123456789abcdef012345",
            "deliverystatus": "undeliverable",
            "partscount": 3,
            "cost": 0.0,
            "type": "sms",
            "to": TO,
        },
    ),
    (
        "permanenterror-no-bill-zero-cost",
        record(SMS3, DS.PERMANENTERROR, (CS.PERMANENTERROR,)),
        {
            "messagelistId": 77,
            "messageId": "0123456789abcdef012345",
            "deliverystatus": "permanenterror",
            "partscount": 3,
            "cost": 0.0,
            "type": "sms",
            "to": TO,
        },
    ),
    (
        "customer-id-echoed",
        record(SMS3, DS.SCHEDULED, (CS.SCHEDULED,), customer_id="order-42"),
        {
            "messagelistId": 77,
            "messageId": "0123456789abcdef012345",
            "deliverystatus": "scheduled",
            "partscount": 3,
            "customerMessageId": "order-42",
            "type": "sms",
            "to": TO,
        },
    ),
    (
        "fallback-viber-delivered",
        record(
            VIBER_SMS,
            DS.DELIVERED,
            (CS.DELIVERED, CS.NOT_USED),
            rate=30_000,
            rate_currency="USD",
            bill=30_000,
        ),
        {
            "messagelistId": 77,
            "messageId": "0123456789abcdef012345",
            "deliverystatus": "delivered",
            "partscount": 1,
            "cost": 0.03,
            "type": "viber_promo",
            "to": TO,
            "fallbacks": [{"type": "sms", "status": "not_used"}],
            "extendedStatuses": {"viber": "delivered", "sms": "not_used"},
            "rate": 0.03,
            "rateAmount": 0.03,
            "rateCurrency": "USD",
            "billAmount": 0.03,
            "billCurrency": "USD",
        },
    ),
    (
        "fallback-sms-delivered-converted",
        record(
            VIBER_SMS,
            DS.DELIVERED,
            (CS.UNDELIVERABLE, CS.DELIVERED),
            at_step=1,
            rate=50_000,
            rate_currency="USD",
            bill=92_000,
            bill_currency="EUR",
        ),
        {
            "messagelistId": 77,
            "messageId": "0123456789abcdef012345",
            "deliverystatus": "delivered",
            "partscount": 2,
            "cost": 0.092,
            "type": "viber_promo",
            "to": TO,
            "fallbacks": [{"type": "sms", "status": "delivered"}],
            "extendedStatuses": {"viber": "undeliverable", "sms": "delivered"},
            "rate": 0.05,
            "rateAmount": 0.1,
            "rateCurrency": "USD",
            "billAmount": 0.092,
            "billCurrency": "EUR",
        },
    ),
    (
        "fallback-processing-on-sms-no-cost",
        record(
            VIBER_SMS,
            DS.PROCESSING,
            (CS.UNDELIVERABLE, CS.PROCESSING),
            at_step=1,
            rate=50_000,
            rate_currency="USD",
        ),
        {
            "messagelistId": 77,
            "messageId": "0123456789abcdef012345",
            "deliverystatus": "processing",
            "partscount": 2,
            "type": "viber_promo",
            "to": TO,
            "fallbacks": [{"type": "sms", "status": "processing"}],
            "extendedStatuses": {"viber": "undeliverable", "sms": "processing"},
            "rate": 0.05,
            "rateAmount": 0.1,
            "rateCurrency": "USD",
            "billAmount": 0.0,
            "billCurrency": "USD",
        },
    ),
    (
        "fallback-all-undeliverable-costs-nothing",
        record(
            VIBER_RCS_SMS,
            DS.UNDELIVERABLE,
            (CS.UNDELIVERABLE, CS.UNDELIVERABLE, CS.UNDELIVERABLE),
            at_step=2,
            rate=50_000,
            rate_currency="USD",
            bill=0,
        ),
        {
            "messagelistId": 77,
            "messageId": "0123456789abcdef012345",
            "deliverystatus": "undeliverable",
            "partscount": 1,
            "cost": 0.0,
            "type": "viber_trans",
            "to": TO,
            "fallbacks": [
                {"type": "rcs", "status": "undeliverable"},
                {"type": "sms", "status": "undeliverable"},
            ],
            "extendedStatuses": {
                "viber": "undeliverable",
                "rcs": "undeliverable",
                "sms": "undeliverable",
            },
            "rate": 0.05,
            "rateAmount": 0.05,
            "rateCurrency": "USD",
            "billAmount": 0.0,
            "billCurrency": "USD",
        },
    ),
    (
        "fallback-scheduled-no-rate-yet",
        record(VIBER_SMS, DS.SCHEDULED, (CS.SCHEDULED, CS.NOT_USED)),
        {
            "messagelistId": 77,
            "messageId": "0123456789abcdef012345",
            "deliverystatus": "scheduled",
            "partscount": 1,
            "type": "viber_promo",
            "to": TO,
            "fallbacks": [{"type": "sms", "status": "not_used"}],
            "extendedStatuses": {"viber": "scheduled", "sms": "not_used"},
            "rate": 0.0,
            "rateAmount": 0.0,
            "rateCurrency": "USD",
            "billAmount": 0.0,
            "billCurrency": "USD",
        },
    ),
]


@pytest.mark.parametrize(("rec", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_status_view(rec: MessageRecord, expected: dict[str, Any]) -> None:
    view = status_view(rec)
    assert view == expected
    assert list(view)[:4] == ["messagelistId", "messageId", "deliverystatus", "partscount"]


@pytest.mark.parametrize("status", list(DS))
def test_cost_only_when_final(status: DS) -> None:
    steps = (CS(status.value),)
    view = status_view(record(SMS3, status, steps, rate=50_000, rate_currency="USD", bill=0))
    assert ("cost" in view) is status.is_final


@pytest.mark.parametrize("chain", [SMS3, VIBER_SMS, VIBER_RCS_SMS], ids=["1", "2", "3"])
def test_extended_fields_only_with_a_fallback(chain: tuple[Step, ...]) -> None:
    steps = (CS.SCHEDULED,) + (CS.NOT_USED,) * (len(chain) - 1)
    view = status_view(record(chain, DS.SCHEDULED, steps))
    assert BASIC_KEYS <= set(view)
    assert (EXTENDED_KEYS <= set(view)) is (len(chain) > 1)
    assert EXTENDED_KEYS.isdisjoint(view) is (len(chain) == 1)


# (rate micros, parts, bill micros): rateAmount = rate × parts exactly, billAmount = cost
MONEY: list[tuple[int, int, int]] = [
    (50_000, 1, 50_000),
    (50_000, 2, 100_000),
    (70_000, 3, 210_000),
    (10_000, 7, 64_400),
    (33_333, 3, 99_999),
    (1, 10, 9),
]


@pytest.mark.parametrize(("rate", "parts", "bill"), MONEY)
def test_rate_amount_and_bill(rate: int, parts: int, bill: int) -> None:
    chain = (step(MessageType.VIBER_PROMO), step(MessageType.SMS, parts=parts))
    steps = (CS.UNDELIVERABLE, CS.DELIVERED)
    rec = record(chain, DS.DELIVERED, steps, 1, rate=rate, rate_currency="USD", bill=bill)
    rec = replace(rec, bill_currency="EUR")
    view = status_view(rec)
    assert view["partscount"] == parts
    assert view["rate"] == rate / 1_000_000
    assert view["rateAmount"] == rate * parts / 1_000_000
    assert view["billAmount"] == view["cost"] == bill / 1_000_000
    assert (view["rateCurrency"], view["billCurrency"]) == ("USD", "EUR")


def test_view_reads_the_current_step_parts() -> None:
    rec = record(VIBER_SMS, DS.PROCESSING, (CS.PROCESSING, CS.NOT_USED))
    assert status_view(rec)["partscount"] == 1
    moved = replace(
        rec, progress=replace(rec.progress, step=1, steps=(CS.UNDELIVERABLE, CS.SCHEDULED))
    )
    assert status_view(moved)["partscount"] == 2
