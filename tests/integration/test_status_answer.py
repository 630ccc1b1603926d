"""`GET /bat/message/{id}` in its two parts (api.status): `answer_now`, which answers from
memory and SQLite's synchronous lookup, and `answer_later`, which awaits the rest —
on the real store of each backend, with a real gate (authenticator, login guard and
rate limiter on a clock that stands still, so the bucket never refills)."""

from __future__ import annotations

import time

import orjson
from integration_support import make_account, new_message

from batgate.api.auth import Authenticator
from batgate.api.gate import Gate
from batgate.api.logins import LoginGuard
from batgate.api.ratelimit import RateLimiter
from batgate.api.status import StatusService, answer_later, answer_now, status_answer
from batgate.config import AuthSettings
from batgate.domain.records import Account
from batgate.store.manager import Store

KEY = "key-of-alice"
HEADERS = {"x-authorization-key": KEY}
BURST = 5


def gate_of(store: Store, *, limited: bool) -> Gate:
    limiter = None
    if limited:
        limiter = RateLimiter(store.rate_buckets, 100.0, BURST, clock=lambda: 1_000.0)
    return Gate(Authenticator(store, 30.0, LoginGuard(AuthSettings())), limiter)


async def a_message(store: Store) -> str:
    account = await make_account(store, key=KEY)
    _, (message_id,) = await store.insert_batch(account, [new_message()], time.time())
    return message_id


async def test_the_two_parts_answer_alike(store: Store) -> None:
    """Whatever answers it, a request gets the same answer: a message, an unknown id,
    an id too long to be one, wrong credentials."""
    message_id = await a_message(store)
    gate, statuses = gate_of(store, limited=False), StatusService(store, 0)
    cases = [
        (HEADERS, message_id, 200),
        (HEADERS, "0" * 22, 404),
        (HEADERS, "9" * 65, 404),
        ({"x-authorization-key": "wrong"}, message_id, 401),
    ]
    await answer_later(gate, statuses, HEADERS, "-", message_id)  # the key is cached now
    for headers, wanted, status in cases:
        later = await answer_later(gate, statuses, headers, "-", wanted)
        assert later[0] == status
        now = answer_now(gate, statuses, headers, wanted)
        if isinstance(now, tuple):
            assert now == later
        if status == 200:
            assert orjson.loads(later[1])["messageId"] == message_id
    # SQLite reads at once; PostgreSQL admits at once and reads later.
    now = answer_now(gate, statuses, HEADERS, message_id)
    assert isinstance(now, tuple if store.db.dialect == "sqlite" else Account)


async def test_a_lookup_spends_one_token_whichever_part_answers(store: Store) -> None:
    """The burst buys exactly BURST lookups: a request admitted by `answer_now` and
    answered by `answer_later` (PostgreSQL) is not charged twice. (At 100/s a process
    takes the whole burst at once, so every lookup after the first is admitted at once.)"""
    message_id = await a_message(store)
    gate, statuses = gate_of(store, limited=True), StatusService(store, 0)
    answers = [
        (await status_answer(gate, statuses, HEADERS, "-", message_id))[0] for _ in range(BURST + 3)
    ]
    assert answers == [200] * BURST + [429] * 3


async def test_another_accounts_message_is_unknown_to_both_parts(store: Store) -> None:
    message_id = await a_message(store)
    await make_account(store, "bob", key="key-of-bob")
    gate, statuses = gate_of(store, limited=False), StatusService(store, 0)
    bob = {"x-authorization-key": "key-of-bob"}
    await answer_later(gate, statuses, bob, "-", message_id)  # bob's key is cached now
    later = await answer_later(gate, statuses, bob, "-", message_id)
    assert later[0] == 404
    now = answer_now(gate, statuses, bob, message_id)
    assert not isinstance(now, tuple) or now == later
