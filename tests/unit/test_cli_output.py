"""What the commands print fits 80 columns, ids and statuses whole; money one way."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from rich.console import Console
from rich.table import Table

from batgate.cli import user, webhooks
from batgate.cli.output import money, plural
from batgate.client.errors import NotFoundError
from batgate.client.models import MessagelistReport, MessageStatus, SendEntry, SendResult
from batgate.domain.notifications import EventView

MESSAGE_ID = "0193a1f2-7c3e-7b8a-9c0d-1e2f3a4b5c6d"  # as long as an id gets
STATUSES = ["scheduled", "processing", "delivered", "undeliverable", "permanenterror"]


def rendered(table: Table, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(table)
    return console.export_text().splitlines()


def status(state: str, **extra: object) -> MessageStatus:
    doc = {
        "messagelistId": 9_999_999,
        "messageId": MESSAGE_ID,
        "deliverystatus": state,
        "partscount": 10,
        "billCurrency": "USD",
        **extra,
    }
    if state in ("delivered", "undeliverable", "permanenterror"):
        doc.setdefault("cost", 123.456789)
    return MessageStatus.from_json(doc, MESSAGE_ID)


CHAIN = {"viber": "undeliverable", "rcs": "permanenterror", "sms": "permanenterror"}


def status_table() -> Table:
    rows: list[tuple[str, MessageStatus | None, object]] = [
        (MESSAGE_ID, status(s, extendedStatuses=CHAIN), None) for s in STATUSES
    ]
    rows.append(
        (
            MESSAGE_ID,
            None,
            NotFoundError("no message " + "x" * 60, code="NOT_FOUND", status_code=404),
        )
    )
    return user._status_table(rows)  # type: ignore[arg-type]


def send_table() -> Table:
    entries = (
        SendEntry(0, "accepted", MESSAGE_ID, 10, "+380501234567"),
        SendEntry(
            1,
            "rejected",
            None,
            None,
            "+380501234567123",
            None,
            "INVALID_RECIPIENT",
            "the recipient is not a valid phone number in E.164 " * 2,
        ),
    )
    return user._send_table(SendResult(9_999_999, entries))


def report_table() -> Table:
    counts = {s: 123_456 for s in STATUSES}
    return user._report_table(MessagelistReport(9_999_999, 617_280, counts, 1234.5, "EUR"))


def webhooks_table() -> Table:
    now = time.time()
    events = [
        EventView(
            123_456,
            "evt_x",
            MESSAGE_ID,
            "a-rather-long-account-name",
            s,
            "pending",
            17,
            now,
            now + 3600,
            None,
            "ConnectTimeout: the receiver did not answer",
            None,
        )
        for s in STATUSES
    ]
    return webhooks._events_table(events, now)


TABLES = [
    ("status", status_table),
    ("send", send_table),
    ("report", report_table),
    ("webhooks list", webhooks_table),
]


@pytest.mark.parametrize("make", [t[1] for t in TABLES], ids=[t[0] for t in TABLES])
def test_a_table_fits_80_columns_without_cutting_ids_or_statuses(make: object) -> None:
    lines = rendered(make())  # type: ignore[operator]
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    text = "\n".join(lines)
    assert "…" not in text, text
    words = set(text.split())
    if make is not send_table:
        assert set(STATUSES) <= words, text
    if make is not report_table:
        assert MESSAGE_ID in words, text
    if make is not webhooks_table:
        assert "9999999" in text, text  # the messagelist id, whole


MONEY = [
    (0, "USD", "0.00 USD"),
    (0.05, "USD", "0.05 USD"),
    (0.021, "USD", "0.021 USD"),
    (12.5, "EUR", "12.50 EUR"),
    (0.00001, "USD", "0.00001 USD"),
    (Decimal("0.1") + Decimal("0.2"), "UAH", "0.30 UAH"),
    (0.1 + 0.2, "UAH", "0.30 UAH"),  # 0.30000000000000004: micro-units at most
    (1234567.123456, None, "1234567.123456"),
    (None, "USD", ""),
]


@pytest.mark.parametrize(("amount", "currency", "shown"), MONEY)
def test_money_is_shown_one_way(amount: float | None, currency: str | None, shown: str) -> None:
    assert money(amount, currency) == shown


@pytest.mark.parametrize(
    ("count", "word", "words", "shown"),
    [
        (0, "list", None, "0 lists"),
        (1, "list", None, "1 list"),
        (2, "list", None, "2 lists"),
        (1, "status", "statuses", "1 status"),
        (3, "status", "statuses", "3 statuses"),
    ],
)
def test_counted_nouns_agree(count: int, word: str, words: str | None, shown: str) -> None:
    assert plural(count, word, words) == shown
