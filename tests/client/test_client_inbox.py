"""Inbound messages through the SDK: `inbound()` pages, `iter_inbound()`, and the inbound
webhook verified and typed (`verify_webhook`, `parse_webhook`).

Both clients, against the app in-process and a live `batgate serve`; the messages are
seeded through the real store (inbox_support), the webhook is the one the server's
own webhook sender POSTs to a real HTTP receiver (the scripted server).
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from client_support import Answer, MakeClient, ScriptedServer, Seen, Target
from inbox_support import PHONE, Inbox, make_inbox

from batgate.client import (
    InboundMessage,
    InboundPage,
    MessageStatus,
    NotFoundError,
    ProtocolError,
    ValidationError,
    WebhookVerificationError,
    parse_webhook,
    verify_webhook,
)
from batgate.domain.credentials import new_webhook_secret
from batgate.webhooks import signature_headers


@pytest.fixture
def inbox(target: Target) -> Inbox:
    return make_inbox(target.database_url)


def iterate(client: Any, target: Target, **options: Any) -> list[InboundMessage]:
    """`iter_inbound` of either client, as a list."""
    found = client.iter_inbound(**options)
    if not hasattr(found, "__anext__"):
        return list(found)

    async def collect() -> list[InboundMessage]:
        return [m async for m in found]

    return target.loop.run(collect())


# -- pages -----------------------------------------------------------------------------------


def test_the_inbox_pages_oldest_first_and_says_where_to_go_on(
    make_client: MakeClient, inbox: Inbox
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    seeded = inbox.receive(*(f"reply {i}" for i in range(5)))
    client = make_client(api_key=inbox.api_key)

    first = client.inbound(limit=2)
    assert isinstance(first, InboundPage)
    assert [m.text for m in first.messages] == ["reply 0", "reply 1"]
    assert first.next_cursor is not None and first.resume_after == first.next_cursor
    second = client.inbound(first.next_cursor, limit=2)
    assert [m.text for m in second.messages] == ["reply 2", "reply 3"]
    last = client.inbound(after=second.next_cursor, limit=2)
    assert [m.text for m in last.messages] == ["reply 4"] and last.next_cursor is None
    assert last.resume_after == str(seeded[-1].id)  # where a poll for newer ones starts
    empty = client.inbound(after=last.resume_after)
    assert (empty.messages, empty.next_cursor, empty.resume_after) == ((), None, last.resume_after)

    inbox.receive("a newer one")
    (newer,) = client.inbound(after=last.resume_after).messages
    assert newer.text == "a newer one"

    m = first.messages[0]
    assert m.inbound_id == seeded[0].id
    assert (m.sender, m.to, m.parts, m.incomplete) == (PHONE, inbox.number, 1, False)
    assert (m.connector, m.in_reply_to) == ("smsc-test", None)
    assert m.received_at.tzinfo is not None and before <= m.received_at <= datetime.now(UTC)
    assert m.raw["from"] == PHONE and m.raw["inboundId"] == m.inbound_id


def test_iterating_reads_every_page(make_client: MakeClient, target: Target, inbox: Inbox) -> None:
    inbox.receive(*(f"m{i}" for i in range(7)))
    client = make_client(api_key=inbox.api_key)
    every = iterate(client, target, page_size=3)
    assert [m.text for m in every] == [f"m{i}" for i in range(7)]
    ids = [m.inbound_id for m in every]
    assert ids == sorted(ids)
    rest = iterate(client, target, after=str(ids[4]), page_size=1000)
    assert [m.text for m in rest] == ["m5", "m6"]
    assert iterate(client, target, after=str(ids[-1])) == []


def test_an_answer_to_the_accounts_message_names_it(make_client: MakeClient, inbox: Inbox) -> None:
    client = make_client(api_key=inbox.api_key)
    sent = client.send_sms(PHONE, "Your order is on its way. Reply STOP to opt out")
    inbox.receive("Thanks!", parts=2, incomplete=True)
    (reply,) = client.inbound().messages
    assert reply.in_reply_to == sent.message_id
    assert (reply.parts, reply.incomplete) == (2, True)


def test_each_account_sees_only_its_own(
    make_client: MakeClient, target: Target, inbox: Inbox
) -> None:
    inbox.receive("for the inbox account")
    assert make_client(api_key=target.bob_key).inbound().messages == ()


@pytest.mark.parametrize("after", ["not-a-cursor", "-1"], ids=["words", "negative"])
def test_a_cursor_the_server_never_gave_is_refused(
    make_client: MakeClient, inbox: Inbox, after: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        make_client(api_key=inbox.api_key).inbound(after)
    assert (caught.value.status_code, caught.value.code) == (422, "INVALID_REQUEST")


# -- the contract, against the scripted server ---------------------------------------------------

MESSAGE = {
    "inboundId": 7,
    "from": "+380501234567",
    "to": "MyShop",
    "text": "STOP",
    "receivedAt": "2026-01-23T10:30:00Z",
    "parts": 1,
    "incomplete": False,
    "connector": "smsc1",
    "inReplyTo": "019abc",
}


@pytest.mark.parametrize(
    ("after", "limit", "query", "answer", "expected"),
    [
        (None, 100, "limit=100", {"messages": [MESSAGE], "nextCursor": None}, (7, None, "7")),
        ("6", 1, "limit=1&after=6", {"messages": [MESSAGE], "nextCursor": "7"}, (7, "7", "7")),
        ("9", 5, "limit=5&after=9", {"messages": [], "nextCursor": None}, (None, None, "9")),
        (
            "",
            100,
            "limit=100",
            {"messages": [{**MESSAGE, "receivedAt": "2026-01-23t12:30:00z"}]},
            (7, None, "7"),
        ),
    ],
    ids=["last-page", "more", "empty", "no-cursor-lower-case-time"],
)
def test_pages_as_the_contract_has_them(
    make_scripted_client: MakeClient,
    scripted: ScriptedServer,
    after: str | None,
    limit: int,
    query: str,
    answer: dict[str, Any],
    expected: tuple[int | None, str | None, str],
) -> None:
    scripted.on(f"/bat/inbound?{query}", Answer(200, answer))
    page = make_scripted_client().inbound(after, limit=limit)
    first = page.messages[0].inbound_id if page.messages else None
    assert (first, page.next_cursor, page.resume_after) == expected
    assert all(m.received_at.utcoffset() is not None for m in page.messages)


def test_received_at_keeps_its_offset() -> None:
    m = InboundMessage.from_json({**MESSAGE, "receivedAt": "2026-01-23T12:30:00.25+02:00"})
    assert m.received_at == datetime(2026, 1, 23, 10, 30, 0, 250_000, tzinfo=UTC)
    assert m.received_at.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    "answer",
    [
        {"nextCursor": None},
        {"messages": [{**MESSAGE, "receivedAt": "2026-01-23T10:30:00"}], "nextCursor": None},
        {"messages": [{**MESSAGE, "receivedAt": "yesterday"}], "nextCursor": None},
        {"messages": [{k: v for k, v in MESSAGE.items() if k != "from"}], "nextCursor": None},
        {"messages": [{**MESSAGE, "inboundId": "7"}], "nextCursor": None},
        {"messages": [{**MESSAGE, "incomplete": "no"}], "nextCursor": None},
    ],
    ids=["no-messages", "naive-time", "not-a-time", "no-from", "id-a-string", "incomplete-text"],
)
def test_a_page_off_the_contract_is_a_protocol_error(
    make_scripted_client: MakeClient, scripted: ScriptedServer, answer: dict[str, Any]
) -> None:
    scripted.on("/bat/inbound?limit=100", Answer(200, answer))
    with pytest.raises(ProtocolError):
        make_scripted_client().inbound()


@pytest.mark.parametrize("limit", [0, 1001, -5])
def test_a_page_size_out_of_range_is_refused_before_asking(
    make_scripted_client: MakeClient, scripted: ScriptedServer, limit: int
) -> None:
    with pytest.raises(ValueError):
        make_scripted_client().inbound(limit=limit)
    assert scripted.requests() == []


def test_an_endpoint_without_an_inbox_is_explained(
    make_scripted_client: MakeClient, scripted: ScriptedServer
) -> None:
    with pytest.raises(NotFoundError) as caught:
        make_scripted_client().inbound()
    assert "batgate extension" in caught.value.message


# -- webhooks --------------------------------------------------------------------------------


def test_the_inbound_webhook_is_verified_and_typed(
    target: Target, make_client: MakeClient, scripted: ScriptedServer
) -> None:
    # A path of its own: events of the other runs of this test may still come in.
    hook = f"/hook/{secrets.token_hex(4)}"
    scripted.on(hook, Answer(200, {}))
    inbox = make_inbox(target.database_url, webhook_url=scripted.url + hook)
    sent = make_client(api_key=inbox.api_key).send_sms(PHONE, "Order #7 confirmed")
    (stored,) = inbox.receive("When will it arrive?")

    inbound = wait_for_hook(scripted, hook, f"in_{stored.id}")
    event = verify_webhook(inbound.body, inbound.headers, inbox.webhook_secret)
    assert isinstance(event, InboundMessage)
    assert (event.inbound_id, event.sender, event.to) == (stored.id, PHONE, inbox.number)
    assert (event.text, event.parts, event.in_reply_to) == (
        "When will it arrive?",
        1,
        sent.message_id,
    )
    assert event.raw["event"] == "inbound" and event.received_at.tzinfo is not None
    assert event == make_client(api_key=inbox.api_key).inbound().messages[0]

    status = wait_for_hook(scripted, hook, f"evt_{sent.message_id}_delivered")
    typed = verify_webhook(status.body, status.headers, inbox.webhook_secret)
    assert isinstance(typed, MessageStatus) and typed.message_id == sent.message_id
    assert "timestamp" in typed.raw

    with pytest.raises(WebhookVerificationError):
        verify_webhook(inbound.body, inbound.headers, new_webhook_secret())
    forged = inbound.body.replace(b"When", b"Why")
    with pytest.raises(WebhookVerificationError):
        verify_webhook(forged, inbound.headers, inbox.webhook_secret)


def wait_for_hook(
    scripted: ScriptedServer, path: str, webhook_id: str, timeout: float = 20.0
) -> Seen:
    """The first request to `path` with that `webhook-id`, once it came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [s for s in scripted.requests(path) if s.headers["webhook-id"] == webhook_id]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {webhook_id} in {timeout} s: {scripted.requests(path)}")


SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STATUS_EVENT = {
    "messageId": "019abc",
    "deliverystatus": "delivered",
    "timestamp": "2026-01-23T10:30:00Z",
    "cost": 0.05,
    "messagelistId": 3,
    "customerMessageId": None,
    "partscount": 1,
}


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"event": "inbound", **MESSAGE}, InboundMessage),
        (STATUS_EVENT, MessageStatus),
        ({**STATUS_EVENT, "extendedStatuses": {"viber": "delivered"}}, MessageStatus),
        ({"event": "inbound", **MESSAGE, "inReplyTo": None, "incomplete": True}, InboundMessage),
        ({"event": "opened", "messageId": "x"}, ProtocolError),
        ({"event": "inbound", "inboundId": 1}, ProtocolError),
        ({k: v for k, v in STATUS_EVENT.items() if k != "messageId"}, ProtocolError),
        ({"messageId": "x"}, ProtocolError),
        ([STATUS_EVENT], ProtocolError),
    ],
    ids=[
        "inbound",
        "status",
        "status-chain",
        "inbound-incomplete",
        "unknown-event",
        "inbound-short",
        "status-no-id",
        "no-event-no-status",
        "a-list",
    ],
)
def test_webhook_bodies_become_typed_events(payload: Any, kind: type[Any]) -> None:
    body = json.dumps(payload).encode()
    headers = signature_headers([SECRET], "evt_1", int(time.time()), body)
    if issubclass(kind, Exception):
        with pytest.raises(kind):
            verify_webhook(body, headers, SECRET)
        with pytest.raises(kind):
            parse_webhook(payload)
        return
    event = verify_webhook(body, headers, SECRET)
    assert isinstance(event, kind) and event == parse_webhook(payload)
    assert event.raw == payload
    if isinstance(event, MessageStatus):
        assert (event.message_id, event.status, event.cost) == ("019abc", "delivered", 0.05)
    else:
        assert isinstance(event, InboundMessage)
        assert (event.inbound_id, event.sender, event.text) == (7, "+380501234567", "STOP")


def test_a_stale_webhook_is_refused() -> None:
    body = json.dumps(STATUS_EVENT).encode()
    headers = signature_headers([SECRET], "evt_1", int(time.time()) - 3600, body)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, SECRET)
