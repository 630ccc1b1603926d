"""SPEC §7 sandbox outcomes by number ending, TTL expiry, and the default-settings timing."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

NORMAL = "+380501234567"
CALLER = {"callerId": "+380441234567"}


def _message(mtype: str, to: str, **extra: object) -> dict:
    message = {"from": "batgate", "to": to, "type": mtype, "text": "sandbox test", **extra}
    if mtype == "flashcall":
        message.pop("text")
        message["messageData"] = CALLER
    return message


# type, recipient, final status (one channel, no fallback)
ENDINGS = [
    pytest.param("sms", NORMAL, "delivered", id="normal-sms"),
    pytest.param("viber_promo", NORMAL, "delivered", id="normal-viber"),
    pytest.param("sms", "+380501230001", "undeliverable", id="0001-sms"),
    pytest.param("viber_promo", "+380501230001", "undeliverable", id="0001-viber"),
    pytest.param("rcs", "+380501230001", "undeliverable", id="0001-rcs"),
    pytest.param("sms", "+380501230002", "permanenterror", id="0002-sms"),
    pytest.param("viber_promo", "+380501230002", "permanenterror", id="0002-viber"),
    pytest.param("sms", "+380501230003", "delivered", id="0003-sms"),
    pytest.param("viber_promo", "+380501230003", "undeliverable", id="0003-viber"),
    pytest.param("rcs", "+380501230003", "undeliverable", id="0003-rcs"),
    pytest.param("flashcall", "+380501230003", "undeliverable", id="0003-flashcall"),
]


@pytest.mark.parametrize(("mtype", "to", "outcome"), ENDINGS)
def test_magic_ending_outcome(fast_server, alice, mtype, to, outcome):
    entry = fast_server.send_one(alice, _message(mtype, to))

    trace = fast_server.wait_final(alice, entry["messageId"])

    trace.assert_walk(outcome)
    if outcome == "delivered":
        assert trace.final["cost"] > 0
    else:
        assert trace.final["cost"] == 0


def test_0004_stays_processing_then_delivers(fast_server, alice):
    """slow_delay is 2 s on the fast server (20 s by default)."""
    entry = fast_server.send_one(alice, _message("sms", "+380501230004"))

    trace = fast_server.wait_final(alice, entry["messageId"], timeout=15)

    trace.assert_walk("delivered")
    assert "processing" in trace.statuses
    processing_for = trace.first_seen("delivered") - trace.first_seen("processing")
    assert processing_for >= 1.5, trace.statuses
    assert trace.final["cost"] > 0


def test_0005_no_receipt_is_undeliverable_when_ttl_passes(fast_server, alice):
    sent_at = time.monotonic()
    answer = fast_server.send(
        alice,
        [_message("sms", "+380501230005", ttl=2), _message("sms", "+380501230005")],
    )
    expiring, lasting = (e["messageId"] for e in answer["messages"])

    trace = fast_server.wait_final(alice, expiring, timeout=30)

    trace.assert_walk("undeliverable")
    assert "processing" in trace.statuses
    assert trace.final["cost"] == 0
    assert time.monotonic() - sent_at >= 1.9
    # Without a ttl of its own, the default (a day) applies: still waiting for a receipt.
    assert fast_server.status(alice, lasting)["deliverystatus"] == "processing"


def test_ttl_passing_while_queued_is_permanenterror(slow_retry_server):
    """0002 fails every send; the retry would come after ~6 s, the TTL passes after 2 s."""
    account = slow_retry_server.create_account("ttl")
    entry = slow_retry_server.send_one(account, _message("sms", "+380501230002", ttl=2))

    trace = slow_retry_server.wait_final(account, entry["messageId"], timeout=15, interval=0.1)

    assert trace.statuses == ["scheduled", "permanenterror"]
    assert trace.final["cost"] == 0
    became_final = trace.first_seen("permanenterror")
    assert became_final <= 2 + 1.5, (
        f"ttl 2 s passed while queued, but the status was scheduled until {became_final:.1f} s"
    )


def test_default_settings_all_final_within_15_seconds(default_server):
    account = default_server.create_account("dflt")
    batch = [
        (_message("sms", NORMAL), "delivered"),
        (_message("viber_promo", NORMAL), "delivered"),
        (_message("rcs", NORMAL), "delivered"),
        (_message("flashcall", NORMAL), "delivered"),
        (_message("sms", "+380501230001"), "undeliverable"),
        (_message("viber_promo", "+380501230001"), "undeliverable"),
        (_message("sms", "+380501230002"), "permanenterror"),
        (_message("viber_promo", "+380501230002"), "permanenterror"),
        (_message("sms", "+380501230003"), "delivered"),
        (_message("viber_promo", "+380501230003"), "undeliverable"),
        (
            _message("viber_promo", "+380501230003", fallback={"type": "sms", "text": "t"}),
            "delivered",
        ),
    ]
    answer = default_server.send(account, [m for m, _ in batch])
    ids = [e["messageId"] for e in answer["messages"]]

    traces = default_server.wait_all(account, ids, timeout=15, interval=0.25)

    for message_id, (message, outcome) in zip(ids, batch, strict=True):
        trace = traces[message_id]
        trace.assert_walk(outcome)
        assert trace.times[-1] <= 15.0, (message, trace.statuses)
        if outcome == "delivered":
            assert trace.final["cost"] > 0, message
        else:
            assert trace.final["cost"] == 0, message
