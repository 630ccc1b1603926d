"""The send hot path's row tuple: what Progress.new and the message say, column by column."""

from __future__ import annotations

import orjson
import pytest

from batgate.domain.documents import encoded, status_document
from batgate.domain.lifecycle import Progress
from batgate.domain.messages import MessageType, NewMessage, Step
from batgate.store.rows import NEW_MESSAGE_COLUMNS, new_message_values, progress_values
from batgate.store.schema import messages


def step(kind: MessageType, text: str | None = "hi", ttl: int = 3600) -> Step:
    return Step(kind, "+380501234567", "Shop", text, None, ttl, 1)


CASES = [
    ("one sms", NewMessage(None, (step(MessageType.SMS),))),
    ("customer id and callback", NewMessage("c-1", (step(MessageType.SMS),), "https://x/cb")),
    (
        "viber then sms",
        NewMessage(None, (step(MessageType.VIBER_PROMO, ttl=60), step(MessageType.SMS))),
    ),
    (
        "three steps",
        NewMessage(
            None,
            (step(MessageType.RCS), step(MessageType.VIBER_TRANS), step(MessageType.SMS, None)),
        ),
    ),
]


@pytest.mark.parametrize("message", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_values_match_the_row(message: NewMessage) -> None:
    now = 1_700_000_000.5
    row = progress_values(Progress.new(message.steps, now)) | {
        "id": "m1",
        "messagelist_id": 7,
        "account_id": 3,
        "customer_message_id": message.customer_message_id,
        "recipient": message.to,
        "type": message.primary.type.value,
        "chain": orjson.dumps([s.to_json() for s in message.steps]).decode(),
        "callback_url": message.callback_url,
        "bill_currency": "EUR",
        "version": 0,
        "created_at": now,
        "updated_at": now,
        "status_doc": encoded(
            status_document(
                7,
                "m1",
                message.customer_message_id,
                message.to,
                message.primary.type,
                message.steps,
                Progress.new(message.steps, now),
                None,
                None,
                None,
                "EUR",
            )
        ),
    }
    values = dict(
        zip(
            NEW_MESSAGE_COLUMNS,
            new_message_values("m1", 7, 3, "EUR", message, 1_700_000_000.5),
            strict=True,
        )
    )
    assert values == {k: row[k] for k in NEW_MESSAGE_COLUMNS}
    left_out = {k: v for k, v in row.items() if k not in NEW_MESSAGE_COLUMNS}
    assert all(v is None for v in left_out.values()), left_out
    defaults = {c.name for c in messages.c} - set(NEW_MESSAGE_COLUMNS)
    assert set(left_out) <= defaults
