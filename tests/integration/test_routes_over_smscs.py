"""Routes over two real SMSCs (tests/peers/smsc34.py, one process each): failover when
one is down or dies, weights, least cost, and never a step at two carriers.

The store and the engine are real (both backends); messages go in through the store,
their stories and statuses are read back from it, and each SMSC's own records say
what it was sent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from integration_support import make_account
from peers_support import Peer, free_port, start_peer, stop_peer
from test_smpp_carrier import carrier, engine_with, number, sms, stats, wait_final

from batgate.config import RouteRule
from batgate.domain.records import Account
from batgate.domain.status import DeliveryStatus as DS
from batgate.engine.runner import Engine
from batgate.store.manager import Store
from databases import raw_connection
from waiting import until


@pytest.fixture
def smscs(tmp_path: Path) -> Iterator[list[Peer]]:
    """Two SMSCs of this test alone (either may be stopped by it)."""
    peers = [start_peer("smsc34.py", [], tmp_path) for _ in range(2)]
    yield peers
    for peer in peers:
        stop_peer(peer)


def down(peer: Peer) -> dict[str, Any]:
    """`peer`'s connector settings, at a loopback port nothing listens on."""
    return carrier(peer) | {"port": free_port()}


def routed(
    store: Store, connectors: dict[str, dict[str, Any]], *rules: dict[str, Any]
) -> AbstractAsyncContextManager[Engine]:
    routes = [RouteRule(**rule) for rule in rules]
    return engine_with(store, connectors=connectors, routes=routes)


async def send(store: Store, account: Account, engine: Engine, *batch: Any) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(batch), 500):
        _, more = await store.insert_batch(account, batch[start : start + 500], time.time())
        ids += more
    engine.wake()
    return ids


async def destinations(peer: Peer) -> Counter[str]:
    """How many submit_sm the SMSC saw per destination number (international, with
    its "+", as batgate stores it; SMPP sends it without)."""
    found = await stats(peer, messages=True)
    return Counter("+" + m["destination"] for m in found["messages"])


async def test_a_carrier_that_is_down_is_passed_over_without_using_an_attempt(
    store: Store, account: Account, smscs: list[Peer]
) -> None:
    b = smscs[1]
    connectors = {"a": down(b), "b": carrier(b)}
    async with routed(store, connectors, {"channels": ["sms"], "connectors": ["a", "b"]}) as e:
        ids = await send(store, account, e, *(sms(number("4567")) for _ in range(20)))
        records = await wait_final(store, ids)
    assert {r.progress.status for r in records.values()} == {DS.DELIVERED}
    assert {r.progress.attempts for r in records.values()} == {0}
    seen = await destinations(b)
    assert sorted(seen) == sorted(r.to for r in records.values())
    assert set(seen.values()) == {1}
    story = [line.reason for line in await store.story(ids[0]) if line.reason]
    assert any(
        why.startswith("handed to b by route 1; passed over a (a: not bound to the SMSC")
        for why in story
    ), story


async def test_weights_split_the_traffic(store: Store, account: Account, smscs: list[Peer]) -> None:
    a, b = smscs
    rule = {"connectors": ["a", "b"], "strategy": "weighted", "weights": [3, 1]}
    async with routed(store, {"a": carrier(a), "b": carrier(b)}, rule) as engine:
        ids = await send(store, account, engine, *(sms(number("4567")) for _ in range(400)))
        await wait_final(store, ids, timeout=60)
    at_a, at_b = await destinations(a), await destinations(b)
    assert not set(at_a) & set(at_b)  # no message at both
    assert sum(at_a.values()) + sum(at_b.values()) == 400
    assert 0.6 < sum(at_a.values()) / 400 < 0.9  # 3:1, seven standard deviations wide


async def test_the_cheapest_carrier_for_each_prefix_takes_it(
    store: Store, account: Account, smscs: list[Peer]
) -> None:
    a, b = smscs
    connectors = {
        "a": carrier(a, prices={"+38050": 0.010, "+380": 0.030}),
        "b": carrier(b, prices={"+380": 0.020}),
    }
    rule = {"connectors": ["a", "b"], "strategy": "cheapest"}
    cheap_at_a = [sms(number("4567")) for _ in range(5)]  # +38050…
    cheap_at_b = [sms("+38067" + number("4567")[6:]) for _ in range(5)]
    async with routed(store, connectors, rule) as engine:
        ids = await send(store, account, engine, *cheap_at_a, *cheap_at_b)
        await wait_final(store, ids)
    assert sorted(await destinations(a)) == sorted(m.to for m in cheap_at_a)
    assert sorted(await destinations(b)) == sorted(m.to for m in cheap_at_b)


async def test_an_accounts_rule_routes_that_accounts_messages_only(
    store: Store, account: Account, smscs: list[Peer]
) -> None:
    a, b = smscs
    vip = await make_account(store, "vip")
    rules = ({"accounts": ["vip"], "connectors": ["b"]}, {"connectors": ["a"]})
    theirs = [sms(number("4567")) for _ in range(5)]
    others = [sms(number("4567")) for _ in range(5)]
    async with routed(store, {"a": carrier(a), "b": carrier(b)}, *rules) as engine:
        ids = await send(store, vip, engine, *theirs)
        ids += await send(store, account, engine, *others)
        await wait_final(store, ids)
    assert sorted(await destinations(b)) == sorted(m.to for m in theirs)
    assert sorted(await destinations(a)) == sorted(m.to for m in others)


async def test_an_smsc_that_dies_mid_run_hands_no_step_to_the_other_and_gets_its_traffic_back(
    store: Store, account: Account, smscs: list[Peer], database_url: str, tmp_path: Path
) -> None:
    """A failover route, 5,000 messages: 2,500, the first SMSC stopped once it has
    taken some, then 2,500 more. Every message ends final; none reached both SMSCs:
    those the first took, or may have (a submit unanswered when it went), stayed with
    it and ended there (their TTL is short); the others, and all the second 2,500,
    went to the second SMSC, each once. Then the first comes back on its port: once
    its link is bound and its circuit closed again, the route's traffic is its own."""
    a, b = smscs
    connectors = {"a": carrier(a, circuit_cooldown=0.5), "b": carrier(b)}
    rule = {"channels": ["sms"], "connectors": ["a", "b"]}
    # Those the first SMSC took when it went have no receipt coming: they end at their
    # TTL; the second 2,500 must all reach the second, however busy the machine.
    first = [sms(number("4567"), ttl=10) for _ in range(2500)]
    then = [sms(number("4567")) for _ in range(2500)]
    async with routed(store, connectors, rule) as engine:
        ids = await send(store, account, engine, *first)
        await until(lambda: stats(a), lambda s: s["submits"] >= 300, "the first SMSC at work")
        at_a = await destinations(a)  # what it saw, read just before it goes
        stop_peer(a)
        ids += await send(store, account, engine, *then)
        await until(lambda: unfinished(database_url), lambda n: n == 0, "all final", 90)
        records = {i: await store.get_message(i) for i in ids}
        at_b = await destinations(b)

        back = start_peer("smsc34.py", [], tmp_path, port=a.port)
        smscs.append(back)
        link = engine.connectors["a"]
        await until(lambda: getattr(link, "bound_links", 0), bool, "the first SMSC bound again")
        probes = [sms(number("4567")) for _ in range(50)]  # the circuit's probe among them
        await wait_final(store, await send(store, account, engine, *probes))
        later = [sms(number("4567")) for _ in range(50)]
        await wait_final(store, await send(store, account, engine, *later))
    assert set(at_b.values()) == {1}, "a message reached the second SMSC twice"
    assert not set(at_a) & set(at_b), "a message reached both SMSCs"
    assert {m.to for m in then} <= set(at_b)
    # Which the stories say were handed to the first: one query, not 5,000 story reads
    # (those took most of two minutes on a busy machine).
    told_a = handed_to(database_url, "a")
    handed_to_a = set()
    for message_id, record in records.items():
        assert record is not None and record.progress.status.is_final
        if record.to in at_b:
            assert record.progress.status is DS.DELIVERED
        if message_id in told_a:
            handed_to_a.add(record.to)
    assert handed_to_a, "the first SMSC took none"
    assert not handed_to_a & set(at_b), "a step the first SMSC took went to the second"
    assert {m.to for m in later} <= set(await destinations(back))
    assert not {m.to for m in later} & set(await destinations(b))


def handed_to(database_url: str, connector: str) -> set[str]:
    """The messages whose story says a step was handed to `connector` (message_notes:
    the lines of `store.story`)."""
    query = "SELECT DISTINCT message_id FROM message_notes WHERE reason LIKE ?"
    with raw_connection(database_url) as raw:
        rows = raw.execute(query, (f"handed to {connector} %",))
        return {message_id for (message_id,) in rows}


def unfinished(database_url: str) -> int:
    """Messages not final yet (a final one has no due time)."""
    with raw_connection(database_url) as raw:
        return int(raw.scalar("SELECT count(*) FROM messages WHERE due_at IS NOT NULL"))
