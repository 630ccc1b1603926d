"""SPEC §3 fallback chains: per-channel statuses, the chain's outcome, and the money fields."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

NORMAL = "+380501234567"
FX_EUR = 0.92  # the default fx table: EUR per 1 USD

PROMO = {"from": "batgate", "type": "viber_promo", "text": "Sale today"}
SMS_FALLBACK = {"type": "sms", "text": "Sale today (sms)"}

# id, message, final status, extendedStatuses, fallbacks, channel of `rate`, partscount
CASES = [
    pytest.param(
        {**PROMO, "to": "+380501230003", "fallback": SMS_FALLBACK},
        "delivered",
        {"viber": "undeliverable", "sms": "delivered"},
        [{"type": "sms", "status": "delivered"}],
        "sms",
        1,
        id="viber-fails-sms-delivers",
    ),
    pytest.param(
        {**PROMO, "to": "+380501230003", "fallback": {"type": "sms", "text": "a" * 161}},
        "delivered",
        {"viber": "undeliverable", "sms": "delivered"},
        [{"type": "sms", "status": "delivered"}],
        "sms",
        2,
        id="viber-fails-two-part-sms-delivers",
    ),
    pytest.param(
        {**PROMO, "to": NORMAL, "fallback": SMS_FALLBACK},
        "delivered",
        {"viber": "delivered", "sms": "not_used"},
        [{"type": "sms", "status": "not_used"}],
        "viber",
        1,
        id="viber-delivers-sms-not-used",
    ),
    pytest.param(
        {**PROMO, "to": "+380501230001", "fallback": SMS_FALLBACK},
        "undeliverable",
        {"viber": "undeliverable", "sms": "undeliverable"},
        [{"type": "sms", "status": "undeliverable"}],
        "sms",
        1,
        id="both-undeliverable",
    ),
    pytest.param(
        {**PROMO, "to": "+380501230002", "fallback": SMS_FALLBACK},
        "permanenterror",
        {"viber": "permanenterror", "sms": "permanenterror"},
        [{"type": "sms", "status": "permanenterror"}],
        "sms",
        1,
        id="both-permanenterror",
    ),
    pytest.param(
        {**PROMO, "to": "+380501230001", "fallback": {**SMS_FALLBACK, "to": NORMAL}},
        "delivered",
        {"viber": "undeliverable", "sms": "delivered"},
        [{"type": "sms", "status": "delivered"}],
        "sms",
        1,
        id="sms-step-with-its-own-recipient",
    ),
    pytest.param(
        {
            **PROMO,
            "to": "+380501230003",
            "fallback": [{"type": "rcs", "text": "Sale (rcs)"}, SMS_FALLBACK],
        },
        "delivered",
        {"viber": "undeliverable", "rcs": "undeliverable", "sms": "delivered"},
        [{"type": "rcs", "status": "undeliverable"}, {"type": "sms", "status": "delivered"}],
        "sms",
        1,
        id="chain-viber-rcs-sms",
    ),
    pytest.param(
        {
            "from": "batgate",
            "to": "+380501230003",
            "type": "flashcall",
            "messageData": {"callerId": "+380441234567"},
            "fallback": SMS_FALLBACK,
        },
        "delivered",
        {"flashcall": "undeliverable", "sms": "delivered"},
        [{"type": "sms", "status": "delivered"}],
        "sms",
        1,
        id="flashcall-fails-sms-delivers",
    ),
]


@pytest.mark.parametrize(
    ("message", "final_status", "extended", "fallbacks", "rate_channel", "parts"), CASES
)
def test_fallback_outcome_and_money(
    fast_server, alice, message, final_status, extended, fallbacks, rate_channel, parts
):
    entry = fast_server.send_one(alice, message)

    trace = fast_server.wait_final(alice, entry["messageId"])

    final = trace.final
    assert final["deliverystatus"] == final_status, trace.statuses
    assert final["extendedStatuses"] == extended
    assert final["fallbacks"] == fallbacks
    assert final["partscount"] == parts
    rate = fast_server.rates[rate_channel]
    assert final["rate"] == pytest.approx(rate)
    assert final["rateAmount"] == pytest.approx(rate * parts)
    assert final["rateCurrency"] == "USD"
    assert final["billCurrency"] == "USD"
    assert final["billAmount"] == final["cost"]
    if final_status == "delivered":
        assert final["cost"] == pytest.approx(rate * parts)
    else:
        assert final["cost"] == 0
    # The message stays `processing` while the chain moves on; no flapping.
    assert trace.statuses[0] in ("scheduled", "processing")
    for doc in trace.docs:
        assert set(doc["extendedStatuses"]) == set(extended)
        assert [f["type"] for f in doc["fallbacks"]] == [f["type"] for f in fallbacks]


def test_bill_is_converted_to_the_account_currency(fast_server):
    euro = fast_server.create_account("euro", currency="EUR")
    entry = fast_server.send_one(euro, {**PROMO, "to": "+380501230003", "fallback": SMS_FALLBACK})

    final = fast_server.wait_final(euro, entry["messageId"]).final

    assert final["deliverystatus"] == "delivered"
    sms_rate = fast_server.rates["sms"]
    assert final["rate"] == pytest.approx(sms_rate)
    assert final["rateAmount"] == pytest.approx(sms_rate)
    assert final["rateCurrency"] == "USD"
    assert final["billCurrency"] == "EUR"
    assert final["billAmount"] == pytest.approx(sms_rate * FX_EUR)
    assert final["cost"] == final["billAmount"]


def test_fallback_chain_passes_through_processing(fast_server, alice):
    entry = fast_server.send_one(alice, {**PROMO, "to": "+380501230003", "fallback": SMS_FALLBACK})

    trace = fast_server.wait_final(alice, entry["messageId"], interval=0.02)

    # scheduled may be too quick to see, but processing spans two channel attempts.
    assert trace.statuses[-2:] == ["processing", "delivered"], trace.statuses
    seen_sms = [doc["extendedStatuses"]["sms"] for doc in trace.docs]
    assert seen_sms[-1] == "delivered"
    assert "processing" in seen_sms or "scheduled" in seen_sms
