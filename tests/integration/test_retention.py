"""Retention on a real store (both backends): what goes, what stays, and what is redacted.

The records are made by the store, then aged with plain SQL; the janitor runs one
round on a clock of the test's own, in batches smaller than the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from integration_support import make_account, new_message

from batgate.config import RetentionSettings
from batgate.domain.records import Account
from batgate.engine.retention import DAY, Janitor
from batgate.store.manager import Store
from databases import Raw

NOW = 2_000_000_000.0


@dataclass
class Made:
    final_old: list[str]
    final_recent: list[str]
    open_old: list[str]  # not final: never removed, never redacted
    events: dict[str, int]  # what each event was made for -> its id


async def make(store: Store, account: Account, raw: Raw) -> Made:
    data = {"img": "https://example.com/a.png", "buttonText": "Go"}
    _, ids = await store.insert_batch(
        account, [new_message(data=data) for _ in range(7)], NOW - 100 * DAY
    )
    final_old, final_recent, open_old = ids[:3], ids[3:5], ids[5:]
    for mid in final_old + final_recent:
        raw.execute(
            "UPDATE messages SET status = 'delivered', due_at = NULL, steps = 'delivered',"
            " updated_at = ? WHERE id = ?",
            (NOW - (100 if mid in final_old else 1) * DAY, mid),
        )
    events: dict[str, int] = {}
    for name, mid, age, state in [
        ("old settled", final_old[0], 100, "delivered"),
        ("old failed", final_old[1], 100, "failed"),
        ("old pending", open_old[0], 100, "pending"),  # an endpoint disabled for months
        ("recent", final_recent[0], 1, "delivered"),
    ]:
        raw.execute(
            "INSERT INTO message_events (message_id, account_id, status, at, state)"
            " VALUES (?, ?, 'processing', ?, ?)",
            (mid, account.id, NOW - age * DAY, state),
        )
        events[name] = raw.scalar("SELECT max(id) FROM message_events")
        raw.execute(
            "INSERT INTO webhook_attempts (event_id, at, duration_ms) VALUES (?, ?, 1)",
            (events[name], NOW - age * DAY),
        )
    for key, age in [("old", 2 * DAY), ("fresh", 3_600)]:
        raw.execute(
            "INSERT INTO idempotency_keys (account_id, key, body_hash, response, created_at)"
            " VALUES (?, ?, 'h', '{}', ?)",
            (account.id, key, NOW - age),
        )
    for key, age in [("old", 2 * DAY), ("fresh", 3_600)]:
        members = [(final_recent[0], 0), (final_recent[1], 0)] if key == "old" else []
        members += [(open_old[0], 0)] if key == "fresh" else []
        await store.upstream_journal.write("up", key, b"{}", members, NOW - age)
    return Made(final_old, final_recent, open_old, events)


def ids_of(raw: Raw, sql: str) -> set[object]:
    return {row[0] for row in raw.execute(sql)}


CASES = [
    # (id, settings, messages left of (final old, final recent, open old), events left)
    (
        "defaults: events after 90 days, messages kept",
        RetentionSettings(),
        (3, 2, 2),
        {"old pending", "recent"},
    ),
    (
        "messages after 30 days too",
        RetentionSettings(messages_days=30),
        (0, 2, 2),
        {"old pending", "recent"},
    ),
    (
        "everything kept",
        RetentionSettings(events_days=0),
        (3, 2, 2),
        {"old settled", "old failed", "old pending", "recent"},
    ),
]


@pytest.mark.parametrize(
    ("settings", "left", "events_left"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_what_retention_removes(
    store: Store,
    raw: Raw,
    settings: RetentionSettings,
    left: tuple[int, int, int],
    events_left: set[str],
) -> None:
    account = await make_account(store)
    made = await make(store, account, raw)
    small = settings.model_copy(update={"batch_size": 2, "pause": 0})  # several batches
    await Janitor(store.retention, small, clock=lambda: NOW).once()

    stored = ids_of(raw, "SELECT id FROM messages")
    groups = (made.final_old, made.final_recent, made.open_old)
    assert tuple(len(stored & set(g)) for g in groups) == left
    kept = ids_of(raw, "SELECT id FROM message_events")
    assert {name for name, eid in made.events.items() if eid in kept} == events_left
    attempts = ids_of(raw, "SELECT event_id FROM webhook_attempts")
    assert attempts <= kept  # an attempt never outlives its event
    assert ids_of(raw, "SELECT key FROM idempotency_keys") == {"fresh"}
    # Upstream batches go with the keys they were sent under, their members with them.
    assert ids_of(raw, "SELECT key FROM upstream_batches") == {"fresh"}
    assert ids_of(raw, "SELECT key FROM upstream_batch_members") == {"fresh"}
    lists = raw.scalar("SELECT count(*) FROM messagelists")
    assert lists == 1  # emptied lists go; this one still has messages


async def test_a_message_list_emptied_by_retention_goes(store: Store, raw: Raw) -> None:
    account = await make_account(store)
    made = await make(store, account, raw)
    raw.execute("UPDATE messages SET due_at = NULL, updated_at = ?", (NOW - 100 * DAY,))
    janitor = Janitor(store.retention, RetentionSettings(messages_days=30), clock=lambda: NOW)
    removed = await janitor.once()
    assert removed["messages"] == 7 and raw.scalar("SELECT count(*) FROM messagelists") == 0
    assert await store.get_message(made.final_old[0]) is None


async def test_redaction_blanks_content_and_keeps_the_rest(store: Store, raw: Raw) -> None:
    account = await make_account(store)
    made = await make(store, account, raw)
    before = {mid: await store.get_message(mid) for mid in made.final_old + made.open_old}
    settings = RetentionSettings(redact_after_days=7, batch_size=2, pause=0)
    removed = await Janitor(store.retention, settings, clock=lambda: NOW).once()
    assert removed["messages_redacted"] == 3

    for mid, was in before.items():
        now = await store.get_message(mid)
        assert was is not None and now is not None
        if mid in made.final_old:
            assert [(s.text, s.message_data) for s in now.chain] == [(None, None)]
            assert [(s.type, s.to, s.parts) for s in now.chain] == [
                (s.type, s.to, s.parts) for s in was.chain
            ]
            assert (now.progress, now.bill_micros) == (was.progress, was.bill_micros)
        else:
            assert now.chain == was.chain  # still being worked on: untouched
    again = await Janitor(store.retention, settings, clock=lambda: NOW).once()
    assert again["messages_redacted"] == 0
