"""Inbound messages (SPEC §10), pure: the numbers an account may own, the spellings a
carrier may use for them, the senders as E.164, and the documents sent and listed."""

from __future__ import annotations

import orjson
import pytest

from batgate.domain.inbound import (
    StoredInbound,
    e164_of,
    inbound_document,
    owned_number_problem,
    spellings,
    thread_key,
    webhook_body,
    webhook_id,
)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("+380501234567", True),
        ("380501234567", True),  # as some carriers write it
        ("1234", True),  # a short code
        ("MyShop", True),  # a sender name
        ("Shop2025", True),
        ("+38050", False),  # too short for E.164
        ("12", False),
        ("My Shop", False),
        ("ABCDEFGHIJKL", False),  # 12 characters
        ("", False),
        ("+0501234567", False),
    ],
)
def test_what_an_account_may_own(value: str, ok: bool) -> None:
    assert (owned_number_problem(value) is None) is ok


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("+380501234567", ("+380501234567", "380501234567")),
        ("380501234567", ("380501234567", "+380501234567")),
        ("1234", ("1234",)),  # a short code has no "+" form
        ("MyShop", ("MyShop",)),
    ],
)
def test_spellings_of_a_recipient(recipient: str, expected: tuple[str, ...]) -> None:
    assert spellings(recipient) == expected


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("+380501234567", "+380501234567"),
        ("380501234567", "+380501234567"),
        ("0501234567", None),  # a national number: not E.164
        ("1234", None),
        ("Bank", None),
        ("+38", None),
    ],
)
def test_senders_as_e164(sender: str, expected: str | None) -> None:
    assert e164_of(sender) == expected


def test_the_document_and_the_webhook_body() -> None:
    m = StoredInbound(
        7, 3, "+380501234567", "MyShop", "Привіт", 2, False, "smsc", 1_765_108_800.0, "abc"
    )
    doc = {
        "inboundId": 7,
        "from": "+380501234567",
        "to": "MyShop",
        "text": "Привіт",
        "receivedAt": "2025-12-07T12:00:00Z",
        "parts": 2,
        "incomplete": False,
        "connector": "smsc",
        "inReplyTo": "abc",
    }
    assert inbound_document(m) == doc
    body = orjson.loads(webhook_body(m))
    assert list(body)[0] == "event"
    assert body == {"event": "inbound", **doc}
    assert webhook_id(7) == "in_7"


def test_events_keep_order_per_account_and_sender() -> None:
    assert thread_key(3, "+380501234567") == "in:3:+380501234567"
    assert thread_key(3, "+380501234567") != thread_key(4, "+380501234567")
    assert len(thread_key(2_147_483_647, "+" + "9" * 30)) == 32
