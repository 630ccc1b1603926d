"""Inbound messages (SPEC §10–§11) and cancelling scheduled sends (SPEC §12) on the real
store of each backend: who owns a number, what an inbound message brings with it (its
webhook event, `inReplyTo`, an opt-out or opt-in and its auto-reply), and a cancel
that can never race a hand-over."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from integration_support import Clock, make_account, new_message

from batgate.domain.inbound import InboundText
from batgate.domain.optout import Source
from batgate.domain.records import Account
from batgate.engine.cancels import Cancelled, Cancels
from batgate.engine.changes import Changes
from batgate.engine.ratebook import RateBook
from batgate.engine.reception import AutoReplies, InboundPolicy, Reception
from batgate.store.cancellation import Refusal
from batgate.store.inbound import NumberTaken
from batgate.store.manager import Store
from databases import Raw

PHONE, OTHER_PHONE = "+380501234567", "+447911123456"
NOW = 1_700_000_000.0
DAY = 86_400.0


async def hooked(store: Store, username: str = "alice") -> Account:
    await make_account(store, username)
    updated = await store.update_account(username, webhook_url="https://hooks.example/in")
    assert updated is not None
    return updated


def reception(store: Store, clock: Clock, **replies: AutoReplies) -> Reception:
    return Reception(store, InboundPolicy(replies=replies), clock=clock)


# -- owned numbers ---------------------------------------------------------------------


async def test_a_number_has_one_owner(store: Store, account: Account) -> None:
    other = await make_account(store, "bob")
    assert await store.inbox.add_number(account.id, "MyShop", NOW) is True
    assert await store.inbox.add_number(account.id, "MyShop", NOW) is False  # owned already
    with pytest.raises(NumberTaken, match="owned by account 'alice'"):
        await store.inbox.add_number(other.id, "MyShop", NOW)
    await store.inbox.add_number(account.id, "+380441234567", NOW + 1)
    assert [n.number for n in await store.inbox.numbers(account.id)] == [
        "+380441234567",
        "MyShop",
    ]
    assert await store.inbox.remove_number(other.id, "MyShop") is False
    assert await store.inbox.remove_number(account.id, "MyShop") is True
    assert await store.inbox.add_number(other.id, "MyShop", NOW) is True


# -- inbound -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owned", "recipient"),
    [
        ("+380441234567", "+380441234567"),
        ("+380441234567", "380441234567"),  # the carrier left out the "+"
        ("380441234567", "+380441234567"),
        ("1234", "1234"),
        ("MyShop", "MyShop"),
    ],
)
async def test_an_inbound_message_goes_to_the_owner_of_its_recipient(
    store: Store, raw: Raw, owned: str, recipient: str
) -> None:
    account = await hooked(store)
    await store.inbox.add_number(account.id, owned, NOW)
    clock = Clock(NOW + 10)
    await reception(store, clock).inbound("smsc", [InboundText(PHONE, recipient, "hello")])
    (m,) = await store.inbox.page(account.id, 0, 10)
    assert (m.sender, m.recipient, m.text, m.connector) == (PHONE, recipient, "hello", "smsc")
    assert m.received_at == NOW + 10 and m.in_reply_to is None
    event = raw.execute(
        "SELECT message_id, status, state, webhook_id, payload FROM message_events"
    ).one()
    assert event[:4] == (f"in:{account.id}:{PHONE}", "inbound", "pending", f"in_{m.id}")
    assert orjson.loads(event[4])["event"] == "inbound"
    assert await store.inbox.page(None, 0, 10) == []


async def test_unowned_inbound_is_kept_unrouted(store: Store, raw: Raw) -> None:
    account = await hooked(store)
    clock = Clock(NOW)
    texts = [InboundText(PHONE, "+380449999999", "anyone?"), InboundText(PHONE, "Nope", "x")]
    await reception(store, clock).inbound("smsc", texts)
    unrouted = await store.inbox.page(None, 0, 10)
    assert [m.text for m in unrouted] == ["anyone?", "x"]
    assert all(m.account_id is None for m in unrouted)
    assert await store.inbox.page(account.id, 0, 10) == []
    assert raw.scalar("SELECT count(*) FROM message_events") == 0  # nobody to tell
    latest = await store.inbox.latest(10)
    assert [(m.text, owner) for m, owner in latest] == [("x", None), ("anyone?", None)]


async def test_no_webhook_url_no_event_but_listed(store: Store, account: Account, raw: Raw) -> None:
    await store.inbox.add_number(account.id, "MyShop", NOW)
    await reception(store, Clock(NOW)).inbound("smsc", [InboundText(PHONE, "MyShop", "hi")])
    assert len(await store.inbox.page(account.id, 0, 10)) == 1
    assert raw.scalar("SELECT count(*) FROM message_events") == 0


async def test_in_reply_to_is_the_accounts_latest_message_to_the_sender(store: Store) -> None:
    account = await hooked(store)
    bob = await make_account(store, "bob")
    await store.inbox.add_number(account.id, "MyShop", NOW)
    old = await store.send(account, [new_message(PHONE)], NOW - 8 * DAY)
    first = await store.send(account, [new_message(PHONE)], NOW - 2 * DAY)
    latest = await store.send(account, [new_message(PHONE), new_message(OTHER_PHONE)], NOW - DAY)
    await store.send(bob, [new_message(PHONE)], NOW - 60)  # another account's: not it
    assert old.message_ids and first.message_ids
    clock = Clock(NOW)
    texts = [
        InboundText(PHONE, "MyShop", "yes"),
        InboundText(PHONE.removeprefix("+"), "MyShop", "written without +"),
        InboundText("+14155552671", "MyShop", "never written to"),
    ]
    await reception(store, clock).inbound("smsc", texts)
    replies = [m.in_reply_to for m in await store.inbox.page(account.id, 0, 10)]
    assert replies == [latest.message_ids[0], latest.message_ids[0], None]
    clock.advance(7 * DAY)  # the window (7 days by default) has passed the latest
    await reception(store, clock).inbound("smsc", [InboundText(PHONE, "MyShop", "late")])
    assert (await store.inbox.page(account.id, 3, 10))[0].in_reply_to is None


async def test_stop_and_start_change_the_list_and_answer_once(store: Store, raw: Raw) -> None:
    account = await hooked(store)
    await store.inbox.add_number(account.id, "MyShop", NOW)
    replies = AutoReplies(opt_out="You will get no more messages.", opt_in="Welcome back.")
    desk = reception(store, Clock(NOW), alice=replies)
    await desk.inbound("smsc", [InboundText(PHONE, "MyShop", " stop! ")])
    assert await store.suppressions.suppressed(account.id, [PHONE]) == {PHONE}
    (entry,) = (await store.suppressions.entries(account.id, [PHONE])).values()
    assert entry.source == Source.KEYWORD
    # The answer goes although the number is suppressed now: it is the answer to that.
    answer = raw.execute("SELECT recipient, chain, account_id FROM messages").all()
    assert len(answer) == 1
    assert answer[0][0] == PHONE and answer[0][2] == account.id
    step = orjson.loads(answer[0][1])[0]
    assert (step["from"], step["text"]) == ("MyShop", "You will get no more messages.")
    await desk.inbound("smsc", [InboundText(PHONE, "MyShop", "Start")])
    assert await store.suppressions.suppressed(account.id, [PHONE]) == set()
    texts = [orjson.loads(c)[0]["text"] for (c,) in raw.execute("SELECT chain FROM messages").all()]
    assert sorted(texts) == ["Welcome back.", "You will get no more messages."]


async def test_keywords_of_unrouted_or_unanswered_messages(store: Store, raw: Raw) -> None:
    account = await hooked(store)
    await store.inbox.add_number(account.id, "MyShop", NOW)
    desk = reception(store, Clock(NOW))  # no auto-replies configured
    await desk.inbound("smsc", [InboundText(PHONE, "Nobody", "STOP")])  # unrouted
    assert await store.suppressions.suppressed(account.id, [PHONE]) == set()
    await desk.inbound("smsc", [InboundText(PHONE, "MyShop", "STOP please")])  # not only
    assert await store.suppressions.suppressed(account.id, [PHONE]) == set()
    await desk.inbound("smsc", [InboundText(PHONE, "MyShop", "СТОП")])
    assert await store.suppressions.suppressed(account.id, [PHONE]) == {PHONE}
    assert raw.scalar("SELECT count(*) FROM messages") == 0  # no answer configured


async def test_the_outbox_sends_inbound_events_with_their_own_id(store: Store) -> None:
    account = await hooked(store)
    await store.inbox.add_number(account.id, "MyShop", NOW)
    texts = [InboundText(PHONE, "MyShop", f"#{i}") for i in range(3)]
    await reception(store, Clock(NOW)).inbound("smsc", texts)
    claimed = await store.outbox.claim("w", NOW + 1, 60, 10)
    # One sender's events go one at a time, in order (as one message's statuses do).
    assert [e.webhook_id for e in claimed] == ["in_1"]
    assert orjson.loads(claimed[0].payload)["text"] == "#0"


async def test_pages_of_inbound(store: Store, account: Account) -> None:
    await store.inbox.add_number(account.id, "MyShop", NOW)
    desk = reception(store, Clock(NOW))
    await desk.inbound("smsc", [InboundText(PHONE, "MyShop", f"#{i}") for i in range(25)])
    seen: list[str] = []
    after = 0
    while page := await store.inbox.page(account.id, after, 10):
        seen += [m.text for m in page]
        after = page[-1].id
    assert seen == [f"#{i}" for i in range(25)]


# -- cancelling --------------------------------------------------------------------------


def cancels(store: Store, clock: Clock) -> Cancels:
    changes = Changes(store, {"USD": 1.0}, clock=clock)
    return Cancels(store, changes, RateBook(store, []), "tests", clock)


async def test_a_scheduled_message_waits_for_its_time(store: Store, account: Account) -> None:
    later = replace(new_message(PHONE, ttl=60), send_at=NOW + 300)
    sent = await store.send(account, [later, new_message(OTHER_PHONE)], NOW)
    record = await store.get_message(sent.message_ids[0])
    assert record is not None
    assert record.progress.due_at == NOW + 300
    assert record.progress.deadline == NOW + 360  # its TTL counts from its time
    claimed = await store.claim_due("w", NOW + 299, 60, 10)
    assert [m.id for m in claimed] == [sent.message_ids[1]]
    assert [m.id for m in await store.claim_due("w", NOW + 300, 60, 10)] == [sent.message_ids[0]]


async def test_cancel_a_scheduled_message(store: Store, account: Account, raw: Raw) -> None:
    await store.update_account("alice", webhook_url="https://hooks.example/status")
    sent = await store.send(account, [new_message(PHONE)], NOW)
    clock = Clock(NOW + 1)
    assert await cancels(store, clock).cancel(account.id, sent.message_ids[0]) == Cancelled(
        sent.message_ids[0]
    )
    found = await store.status_document(sent.message_ids[0])
    assert found is not None
    doc = orjson.loads(found[1])
    assert (doc["deliverystatus"], doc["cost"]) == ("permanenterror", 0.0)
    payload = raw.scalar("SELECT payload FROM message_events WHERE status = 'permanenterror'")
    assert orjson.loads(payload)["deliverystatus"] == "permanenterror"
    assert "cancelled by the account" in [
        line.reason for line in await store.story(doc["messageId"])
    ]
    # Once final, never again; and the engine no longer sees it.
    again = await cancels(store, clock).cancel(account.id, sent.message_ids[0])
    assert again is Refusal.PAST_SCHEDULED
    assert await store.claim_due("w", NOW + 2, 60, 10) == []


async def test_cancel_never_races_a_hand_over(store: Store, account: Account) -> None:
    await store.send(account, [new_message(PHONE)], NOW)
    (claimed,) = await store.claim_due("dispatcher", NOW, 60, 10)
    clock = Clock(NOW + 1)
    assert await cancels(store, clock).cancel(account.id, claimed.id) is Refusal.IN_HAND
    clock.advance(120)  # that claim's lease ran out: it may be cancelled now
    assert isinstance(await cancels(store, clock).cancel(account.id, claimed.id), Cancelled)


async def test_cancel_only_ones_own_messages(store: Store, account: Account) -> None:
    bob = await make_account(store, "bob")
    sent = await store.send(account, [new_message(PHONE)], NOW)
    desk = cancels(store, Clock(NOW))
    assert await desk.cancel(bob.id, sent.message_ids[0]) is Refusal.NOT_FOUND
    assert await desk.cancel(account.id, "nosuchmessage") is Refusal.NOT_FOUND
