"""The smsbat connector over real HTTP against a scripted upstream: batches and their
Idempotency-Key, each class of failure, the same batch sent again after a lost
answer, and polling (bulk, then one by one). A real batgate as the upstream is in
tests/e2e/test_upstream.py; this upstream can answer what a healthy batgate never
does (500 after storing, a dropped connection, 429, 401)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import pytest
from aiohttp import web

from batgate.channels.base import Outbound
from batgate.channels.smsbat.connector import SmsbatConnector
from batgate.config import SmsbatSettings
from batgate.domain.messages import MessageType, Step
from batgate.domain.outcomes import (
    Accepted,
    CarrierCost,
    CarrierId,
    Failed,
    JournaledBatch,
    PartReceipt,
)
from batgate.domain.status import ChannelStatus
from batgate.store.manager import Store


@dataclass
class Upstream:
    """Answers `script`'s next behaviour per send request (then "ok"); keeps what an
    Idempotency-Key was answered, as batgate does; counts what it stored."""

    script: list[str] = field(default_factory=list)
    requests: list[tuple[str, bytes]] = field(default_factory=list)
    stored: dict[str, int] = field(default_factory=dict)  # customerMessageId → copies
    answers: dict[str, bytes] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    bulk: bool = True
    asked: list[str] = field(default_factory=list)

    async def send(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key", "")
        body = await request.read()
        self.requests.append((key, body))
        assert request.headers["X-Authorization-Key"] == "key"
        behaviour = self.script.pop(0) if self.script else "ok"
        if behaviour == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if behaviour.isdigit():
            headers = {"Retry-After": "7"} if behaviour == "429" else {}
            error = {"error": {"code": "X", "message": "said so"}}
            return web.json_response(error, status=int(behaviour), headers=headers)
        if key not in self.answers:
            entries = []
            for message in orjson.loads(body)["messages"]:
                reference = message["customerMessageId"]
                self.stored[reference] = self.stored.get(reference, 0) + 1
                if message["to"].endswith("0000"):
                    error = {"code": "INVALID_RECIPIENT", "message": "no such number"}
                    entries.append({"messageId": None, "status": "rejected", "error": error})
                else:
                    entries.append({"messageId": f"u-{reference}", "status": "accepted"})
            self.answers[key] = orjson.dumps({"messagelistId": 1, "messages": entries})
        if behaviour == "lost":  # stored, then the answer is lost
            return web.json_response(
                {"error": {"code": "INTERNAL_ERROR", "message": "-"}}, status=500
            )
        return web.Response(body=self.answers[key], content_type="application/json")

    async def bulk_statuses(self, request: web.Request) -> web.Response:
        if not self.bulk:
            return web.json_response({"error": {"code": "NOT_FOUND", "message": "-"}}, status=404)
        ids = orjson.loads(await request.read())["messageIds"]
        self.asked += ids
        return web.json_response({"messages": [self._document(i) for i in ids]})

    async def status(self, request: web.Request) -> web.Response:
        upstream_id = request.match_info["id"]
        self.asked.append(upstream_id)
        return web.json_response(self._document(upstream_id))

    def _document(self, upstream_id: str) -> dict[str, Any]:
        return self.statuses.get(upstream_id, {"messageId": upstream_id, "error": {}})


@dataclass
class Desk:
    """What the engine offers the connector, recorded (the engine's own is
    tested with the real store in tests/e2e/test_upstream.py)."""

    waiting: list[str] = field(default_factory=list)
    got: list[PartReceipt] = field(default_factory=list)
    billed: list[CarrierCost] = field(default_factory=list)
    kept: dict[tuple[str, int], JournaledBatch] = field(default_factory=dict)

    async def receipts(self, connector: str, receipts: Sequence[PartReceipt]) -> None:
        self.got += receipts

    async def costs(self, connector: str, costs: Sequence[CarrierCost]) -> None:
        self.billed += costs

    async def awaiting(self, connector: str, handed_before: float, limit: int) -> list[str]:
        return list(self.waiting)

    async def journal(
        self, connector: str, key: str, body: bytes, members: Sequence[tuple[str, int]]
    ) -> None:
        for member in members:
            self.kept[member] = JournaledBatch(key, body, tuple(members))

    async def journaled(
        self, connector: str, members: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], JournaledBatch]:
        return {m: self.kept[m] for m in members if m in self.kept}


@dataclass
class StoreDesk(Desk):
    """The journal in the real store (the part a crash must not lose)."""

    store: Store | None = None

    async def journal(
        self, connector: str, key: str, body: bytes, members: Sequence[tuple[str, int]]
    ) -> None:
        assert self.store is not None
        await self.store.upstream_journal.write(connector, key, body, members, time.time())

    async def journaled(
        self, connector: str, members: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], JournaledBatch]:
        assert self.store is not None
        return await self.store.upstream_journal.find(connector, members)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    state = Upstream()
    app = web.Application()
    app.router.add_post("/bat/messagelist", state.send)
    app.router.add_post("/bat/message/status", state.bulk_statuses)
    app.router.add_get("/bat/message/{id}", state.status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield state, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def connector(url: str, desk: Desk | None = None, **table: Any) -> SmsbatConnector:
    settings = SmsbatSettings.model_validate(
        {"kind": "smsbat", "url": url, "api_key": "key", "timeout": 2, **table}
    )
    return SmsbatConnector("up", settings, desk or Desk())


def outbound(n: int, to: str = "+380501234567") -> Outbound:
    return Outbound(f"m{n}", Step(MessageType.SMS, to, "shop", "Hi", None, 600, 1), 1)


async def send_all(link: SmsbatConnector, count: int) -> list[Any]:
    try:
        return list(await asyncio.gather(*(link.send(outbound(n)) for n in range(count))))
    finally:
        await link.aclose()


async def test_hand_overs_go_in_batches_each_with_an_idempotency_key(
    upstream: tuple[Upstream, str],
) -> None:
    state, url = upstream
    results = await send_all(connector(url, batch_size=3, batch_window=0.05), 7)
    assert [len(orjson.loads(body)["messages"]) for _, body in state.requests] == [3, 3, 1]
    keys = [key for key, _ in state.requests]
    assert len(set(keys)) == 3 and all(len(k) == 32 for k in keys)
    for n, result in enumerate(results):
        assert isinstance(result, Accepted)
        assert result.carrier_ref == f"u-m{n}.0"
        assert result.handover is not None
        assert result.handover.parts == (CarrierId(f"u-m{n}.0"),)


async def test_a_message_the_upstream_rejects_is_refused_with_its_reason(
    upstream: tuple[Upstream, str],
) -> None:
    _, url = upstream
    link = connector(url)
    try:
        result = await link.send(outbound(1, to="+380501230000"))
    finally:
        await link.aclose()
    assert result == Failed(
        "rejected by the upstream: INVALID_RECIPIENT: no such number", retryable=False
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("script", "retryable", "retry_after", "maybe_taken", "said"),
    [
        (["401"], True, 30.0, False, "the upstream refused our API key (HTTP 401: X: said so)"),
        (["403"], True, 30.0, False, "the upstream refused our API key (HTTP 403"),
        (["429"], True, 7.0, False, "throttled by the upstream (429: X: said so)"),
        (["503", "503"], True, None, False, "the upstream answered HTTP 503"),
        (["400"], False, None, False, "the upstream answered HTTP 400: X: said so"),
        (["lost", "lost"], True, None, True, "the upstream answered HTTP 500"),
        (["drop", "drop"], True, None, True, "no answer from the upstream"),
    ],
)
async def test_each_failure_says_whether_it_may_have_been_taken_and_how_long_to_wait(
    upstream: tuple[Upstream, str],
    script: list[str],
    retryable: bool,
    retry_after: float | None,
    maybe_taken: bool,
    said: str,
) -> None:
    state, url = upstream
    state.script = list(script)
    [result] = await send_all(connector(url), 1)
    assert isinstance(result, Failed)
    assert (result.retryable, result.retry_after, result.maybe_taken) == (
        retryable,
        retry_after,
        maybe_taken,
    )
    assert said in result.reason
    assert len(state.requests) == len(script)


async def test_an_unreachable_upstream_took_nothing() -> None:
    [result] = await send_all(connector(f"http://127.0.0.1:{closed_port()}"), 1)
    assert isinstance(result, Failed)
    assert (result.retry_after, result.maybe_taken) == (1.0, False)
    assert "cannot connect to the upstream" in result.reason


async def test_a_refused_key_takes_the_connector_down_without_asking_again(
    upstream: tuple[Upstream, str],
) -> None:
    state, url = upstream
    state.script = ["401"]
    link = connector(url)
    try:
        first = await link.send(outbound(1))
        assert link.bound_links == 0 and link.down_reason is not None
        again = await link.send(outbound(2))
    finally:
        await link.aclose()
    assert isinstance(first, Failed) and isinstance(again, Failed)
    assert again.retry_after is not None and 0 < again.retry_after <= 30
    assert len(state.requests) == 1


async def test_a_lost_answer_is_asked_again_with_the_same_key_and_body(
    upstream: tuple[Upstream, str],
) -> None:
    state, url = upstream
    state.script = ["lost"]
    results = await send_all(connector(url, batch_window=0.05), 2)
    assert all(isinstance(r, Accepted) for r in results)
    assert len(state.requests) == 2 and state.requests[0] == state.requests[1]
    assert state.stored == {"m0.0": 1, "m1.0": 1}


async def test_a_batch_that_may_have_been_taken_is_sent_again_when_its_messages_come_back(
    upstream: tuple[Upstream, str],
) -> None:
    state, url = upstream
    state.script = ["lost", "lost"]
    link = connector(url, batch_window=0.05)
    try:
        first = await asyncio.gather(link.send(outbound(0)), link.send(outbound(1)))
        assert all(isinstance(r, Failed) and r.maybe_taken for r in first)
        # The dispatcher tries each again (on this connector only): the batch is sent
        # once more, whole, with its key; the other message is answered from it.
        later = await link.send(outbound(1))
        latest = await link.send(outbound(0))
    finally:
        await link.aclose()
    assert isinstance(later, Accepted) and later.carrier_ref == "u-m1.0"
    assert isinstance(latest, Accepted) and latest.carrier_ref == "u-m0.0"
    assert len(state.requests) == 3
    assert len({request for request in state.requests}) == 1
    assert state.stored == {"m0.0": 1, "m1.0": 1}


def document(upstream_id: str, status: str, reference: str, cost: float) -> dict[str, Any]:
    return {
        "messageId": upstream_id,
        "deliverystatus": status,
        "customerMessageId": reference,
        "cost": cost,
    }


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk read", "one by one"])
async def test_polling_keeps_final_statuses_and_asks_again_later_about_the_others(
    upstream: tuple[Upstream, str], bulk: bool
) -> None:
    state, url = upstream
    state.bulk = bulk
    state.statuses = {
        "u1": document("u1", "delivered", "m1.0", 0.05),
        "u2": document("u2", "processing", "m2.0", 0),
    }
    desk = Desk(waiting=["u1", "u2", "u3"])
    link = connector(url, desk, status_rate=1000, poll_after=5)
    try:
        assert await link.poll() == 3
        delivered = PartReceipt(
            CarrierId("u1"), ChannelStatus.DELIVERED, "upstream status delivered"
        )
        assert desk.got == [delivered]
        assert desk.billed == [CarrierCost("m1", 0, 0.05, "USD")]
        desk.waiting = ["u2", "u3"]
        assert await link.poll() == 0  # asked again only after poll_after, doubling
    finally:
        await link.aclose()
    assert sorted(state.asked) == ["u1", "u2", "u3"]


async def test_a_lone_hand_over_goes_at_once_not_at_the_end_of_the_window(
    upstream: tuple[Upstream, str],
) -> None:
    state, url = upstream
    link = connector(url, batch_window=5)
    try:
        sending = asyncio.create_task(link.send(outbound(1)))
        for _ in range(3):  # a few turns of the loop, far less than the window
            await asyncio.sleep(0)
        assert link.collecting == 0  # its batch has gone
        result = await sending
    finally:
        await link.aclose()
    assert isinstance(result, Accepted)
    assert len(state.requests) == 1


async def test_after_a_crash_a_message_taken_back_is_sent_again_in_its_batch(
    upstream: tuple[Upstream, str], database_url: str
) -> None:
    state, url = upstream
    store = Store.connect(database_url)
    await store.upgrade()
    try:
        desk = StoreDesk(store=store)
        state.script = ["lost", "lost"]
        crashed = connector(url, desk, batch_window=0.05)
        first = await asyncio.gather(crashed.send(outbound(0)), crashed.send(outbound(1)))
        assert all(isinstance(r, Failed) and r.maybe_taken for r in first)
        await crashed.aclose()  # the process is gone, and what it knew with it
        # Another process takes the messages back when their claim's lease runs out.
        taking_over = connector(url, desk, batch_window=0.05)
        try:
            later = await taking_over.send(replace(outbound(1), resumed=True))
            latest = await taking_over.send(replace(outbound(0), resumed=True))
            fresh = await taking_over.send(replace(outbound(7), resumed=True))
        finally:
            await taking_over.aclose()
    finally:
        await store.close()
    assert isinstance(later, Accepted) and later.carrier_ref == "u-m1.0"
    assert isinstance(latest, Accepted) and latest.carrier_ref == "u-m0.0"
    assert isinstance(fresh, Accepted)  # never sent before: a batch of its own
    assert len({request for request in state.requests[:3]}) == 1
    assert state.stored == {"m0.0": 1, "m1.0": 1, "m7.0": 1}
