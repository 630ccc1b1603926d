"""Scale-out through a crash: at least once to the carrier, exactly once everywhere else.

API processes (`serve --no-workers`), `batgate worker` processes and the sandbox
carrier as a process of its own (`batgate sandbox`: it counts every hand-over, and
no killed worker can take its count back) share one database. Messages go in
through every API from several threads while workers are killed with `kill -9` in
mid-flight and started again. Then:

- every accepted message is stored and ends in exactly one final status, the one its
  recipient calls for (API, table and history agree; statuses only moved forward);
- it is billed once: one final event, the bill set, and the totals add up;
- the carrier saw each hand-over once, except at most `batch_size` per kill, and
  every repeat is matched by a re-claim the database counted and a worker logged;
- every final status reached the webhook receiver.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx
import pytest

from databases import BACKENDS, Databases, Raw, raw_connection

if TYPE_CHECKING:
    from conftest import Account, Fleet, Receiver, Server, Started, Trace

# One worker runs these one after another: two fleets of 10,000 messages at once on a
# 2-core machine pushed a worker's shutdown past its 20 s (a CI run of the whole suite).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("scale-out fleets")]

FINAL = frozenset({"delivered", "undeliverable", "permanenterror"})
RATES = {"sms": 0.05, "viber": 0.03, "rcs": 0.04, "flashcall": 0.02}

# How long any phase may take: generous, for a machine busy with other work too (the
# PostgreSQL case takes 70–90 s on a 2-core machine that runs other tests meanwhile).
PATIENCE = 420.0
BATCH = 500  # messages per send request
BATCH_SIZE = 100  # messages a worker claims at once: the in-flight bound per worker
SANDBOX = {
    "BATGATE_SANDBOX__DELIVERY_DELAY": "0.3",
    "BATGATE_SANDBOX__SLOW_DELAY": "1.5",
    "BATGATE_SANDBOX__JITTER": "0.5",
}
ENGINE = {
    # A short lease, so a killed worker's messages come back soon; still well over
    # what a batch can take on a busy machine (one wave of `concurrency` sends, each
    # within the timeout, then one write; SQLite writers also wait for each other).
    "BATGATE_DISPATCHER__LEASE_SECONDS": "10",
    "BATGATE_DISPATCHER__BATCH_SIZE": str(BATCH_SIZE),
    "BATGATE_DISPATCHER__CONCURRENCY": str(BATCH_SIZE),
    "BATGATE_SANDBOX__TIMEOUT": "2",
    "BATGATE_DISPATCHER__POLL_INTERVAL": "0.05",
    "BATGATE_DISPATCHER__RETRY_DELAYS": "[0.2,0.2]",
    "BATGATE_RATE_LIMIT__ENABLED": "false",
    "BATGATE_RATES": json.dumps([{"channel": c, "price": p} for c, p in RATES.items()]),
    # Quick webhook retries that never give up within the test.
    "BATGATE_WEBHOOKS__RETRY_DELAYS": "[0.2,0.2]",
    "BATGATE_WEBHOOKS__REPEAT_EVERY": "0.2",
    "BATGATE_WEBHOOKS__POLL_INTERVAL": "0.05",
    "BATGATE_WEBHOOKS__TIMEOUT": "2",
    # A killed worker's claimed webhook events come back after this, not after 60 s.
    "BATGATE_WEBHOOKS__LEASE_SECONDS": "10",
    "BATGATE_WEBHOOKS__PER_ENDPOINT": "32",
}
SMS_MICROS = round(RATES["sms"] * 1_000_000)


@dataclass(frozen=True)
class Kind:
    """A sort of message: its recipient's ending, and what must become of it."""

    ending: str
    final: str
    handovers: int  # distinct hand-overs to the carrier (attempts × chain steps)
    billed: int  # micro-USD
    fallback: bool = False
    ttl: int | None = None

    def allows(self, status: str) -> bool:
        # With a TTL shorter than the queue, a message may expire before any hand-over.
        return status == self.final or (self.ttl is not None and status == "permanenterror")

    def handed_over(self, status: str) -> int:
        return 0 if status == "permanenterror" and self.ttl is not None else self.handovers


NORMAL = Kind("4567", "delivered", 1, SMS_MICROS)
# One message in fifty is one of these, in turn.
MAGIC = [
    Kind("0001", "undeliverable", 1, 0),
    Kind("0002", "permanenterror", 3, 0),  # three attempts, two retries of 0.2 s
    Kind("0003", "delivered", 2, SMS_MICROS, fallback=True),  # Viber fails, SMS delivers
    Kind("0004", "delivered", 1, SMS_MICROS),  # slow: 1.5 s
    Kind("0005", "undeliverable", 1, 0, ttl=8),  # no receipt: the TTL decides
]


def kind_of(i: int) -> Kind:
    return MAGIC[(i // 50) % len(MAGIC)] if i % 50 == 7 else NORMAL


def message(i: int) -> dict[str, Any]:
    kind = kind_of(i)
    to = f"+38050{i % 1000:03d}{kind.ending}"
    body: dict[str, Any] = {"from": "batgate", "to": to, "text": f"scale-out {i}"}
    body.update(type="sms", customerMessageId=f"c{i}")
    if kind.fallback:
        body.update(type="viber_promo", fallback={"type": "sms", "text": f"fallback {i}"})
    if kind.ttl is not None:
        body["ttl"] = kind.ttl
    return body


@dataclass(frozen=True)
class Case:
    backend: str
    apis: int
    workers: int
    messages: int
    kill_at: tuple[int, ...]  # kill a worker when the carrier has had this many submissions
    senders: int = 2


CASES = [
    pytest.param(Case("postgresql", 2, 3, 12_000, (2_000, 7_000)), id="postgresql"),
    pytest.param(Case("sqlite", 1, 2, 3_000, (1_000,)), id="sqlite"),
]


@dataclass
class Run:
    """What happened: the answers to the sends, the kills, the timings."""

    accepted: dict[str, int] = field(default_factory=dict)  # message id -> index
    lists: dict[int, list[str]] = field(default_factory=dict)  # message list -> its ids
    killed: list[int] = field(default_factory=list)  # the pids of the workers killed
    seconds: dict[str, float] = field(default_factory=dict)

    def mark(self, phase: str, start: float) -> None:
        self.seconds[phase] = round(time.monotonic() - start, 1)
        print(f"{phase}: {self.seconds[phase]} s", flush=True)


@pytest.mark.timeout(2 * PATIENCE)
@pytest.mark.parametrize("case", CASES)
def test_a_killed_worker_loses_nothing_and_bills_nothing_twice(
    case: Case,
    databases: Databases,
    fleet: Fleet,
    make_receiver: Callable[..., Receiver],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if case.backend not in BACKENDS:
        pytest.skip(f"{case.backend} is not among the test backends {BACKENDS}")
    start = time.monotonic()
    url = databases.url(case.backend, tmp_path)
    receiver = make_receiver()
    carrier = fleet.sandbox(fleet.env(url, SANDBOX))
    assert carrier.url is not None
    env = fleet.env(url, {**ENGINE, "BATGATE_SANDBOX__URL": carrier.url})
    apis = [fleet.serve(env, "--no-workers") for _ in range(case.apis)]
    account = apis[0].create_account("load", webhook_url=receiver.url())
    headers = account.headers
    workers = [fleet.worker(env) for _ in range(case.workers)]
    run = Run()
    run.mark("start-up", start)

    with ThreadPoolExecutor(case.senders + 1) as pool, statistics_kept(url):
        sending = [
            pool.submit(send_share, [a.base_url for a in apis], headers, case, n)
            for n in range(case.senders)
        ]
        watched = pool.submit(watch, apis[-1], account, sending)
        with raw_connection(url) as raw:
            for threshold in case.kill_at:
                wait_for_submissions(carrier.url, threshold, sending)
                victim = busiest(raw, workers)
                victim.kill()
                workers.remove(victim)
                run.killed.append(victim.proc.pid)
                workers.append(fleet.worker(env))
        for future in sending:
            for list_id, ids in future.result(timeout=PATIENCE):
                run.lists[list_id] = list(ids)
                run.accepted.update(ids)
        run.mark("sent", start)
        with raw_connection(url) as raw:
            wait_all_done(raw, case.messages, PATIENCE, run, start)
        traces = watched.result(timeout=PATIENCE)

    assert len(run.accepted) == case.messages
    hooks = final_hooks(receiver, case.messages)
    stats = httpx.get(f"{carrier.url}/stats", timeout=10).json()
    with raw_connection(url) as raw:
        rows = message_rows(raw)
        events = event_rows(raw)
    logs = fleet.logs("worker")

    check_stored_once_and_final(run, rows, events)
    check_billed_once(run, rows, events, hooks)
    check_api_answers(apis, headers, run, rows)
    for trace in traces:
        assert trace.final["deliverystatus"] in FINAL
    figures = check_repeats_within_bound(case, run, rows, stats, logs)
    figures["final webhook ids"] = len(hooks)
    figures["webhook requests"] = len(receiver.hooks())
    run.mark("checked", start)
    with capsys.disabled():
        print(f"\nscale-out {case.backend}: {figures} seconds {run.seconds}")


# -- a rolling restart: every process, one at a time, while messages flow ---------------

ROLLING_MESSAGES = 10_000
ROLLING_BATCH = 50
SHUTDOWN = 20.0  # shutdown_timeout of every process
ROLLING = {
    "BATGATE_SHUTDOWN_TIMEOUT": str(SHUTDOWN),
    # SIGTERM: /readyz says 503 for 1 s before the API stops listening, ten times the
    # test's balancer's health-check interval: it sends elsewhere by then.
    "BATGATE_HTTP__DRAIN_SECONDS": "1",
}


class Balancer:
    """The test's load balancer in front of the API processes: it sends to those whose
    `/readyz` said 200 at its last check (every 0.1 s), one connection per request,
    and retries only a refused connection, on another API. Anything else reaches the
    caller: a client-visible error."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.ready = dict.fromkeys(urls, True)
        self.refused = 0
        self._turn = 0
        self._stop = threading.Event()
        self._checker = threading.Thread(target=self._check, name="health", daemon=True)
        self._checker.start()

    def _check(self) -> None:
        while not self._stop.wait(0.1):
            for url in self.urls:
                try:
                    self.ready[url] = httpx.get(f"{url}/readyz", timeout=2).status_code == 200
                except httpx.TransportError:
                    self.ready[url] = False

    def post(self, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
        deadline = time.monotonic() + PATIENCE
        while True:
            usable = [u for u in self.urls if self.ready[u]] or self.urls
            url = usable[self._turn % len(usable)]
            self._turn += 1
            try:
                return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=60)
            except httpx.ConnectError:
                self.refused += 1
                self.ready[url] = False
                assert time.monotonic() < deadline, "no API took the request"
                time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._checker.join(10)


def send_paced(balancer: Balancer, headers: dict[str, str], run: Run, seconds: float) -> None:
    """Every message in batches, spread over about `seconds`."""
    batches = -(-ROLLING_MESSAGES // ROLLING_BATCH)
    for b in range(batches):
        indices = range(b * ROLLING_BATCH, min((b + 1) * ROLLING_BATCH, ROLLING_MESSAGES))
        answer = balancer.post(
            "/bat/messagelist", {"messages": [message(i) for i in indices]}, headers
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        entries = body["messages"]
        assert [e["status"] for e in entries] == ["accepted"] * len(indices), entries[:3]
        run.lists[body["messagelistId"]] = [e["messageId"] for e in entries]
        run.accepted.update((e["messageId"], i) for e, i in zip(entries, indices, strict=True))
        time.sleep(seconds / batches)


@pytest.mark.timeout(2 * PATIENCE)
@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_a_rolling_restart_loses_nothing_and_sends_nothing_twice(
    backend_name: str,
    databases: Databases,
    fleet: Fleet,
    make_receiver: Callable[..., Receiver],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SIGTERM to every API and worker process in turn while 10,000 messages flow: no
    client sees an error, nothing is claimed twice or handed over twice, every message
    ends once in its final status, every webhook is delivered."""
    if backend_name not in BACKENDS:
        pytest.skip(f"{backend_name} is not among the test backends {BACKENDS}")
    start = time.monotonic()
    url = databases.url(backend_name, tmp_path)
    receiver = make_receiver()
    carrier = fleet.sandbox(fleet.env(url, SANDBOX))
    assert carrier.url is not None
    env = fleet.env(url, {**ENGINE, **ROLLING, "BATGATE_SANDBOX__URL": carrier.url})
    apis = [fleet.serve(env, "--no-workers") for _ in range(2)]
    account = apis[0].create_account("rolling", webhook_url=receiver.url())
    processes = [api.proc for api in apis] + [fleet.worker(env).proc for _ in range(2)]
    balancer = Balancer([api.base_url for api in apis])
    run = Run()
    run.mark("start-up", start)
    exits: list[float] = []
    try:
        with ThreadPoolExecutor(1) as pool:
            sending = pool.submit(send_paced, balancer, account.headers, run, 10.0)
            for proc in processes:
                assert proc is not None
                time.sleep(1)  # messages in flight everywhere
                _, took = fleet.restart(proc, SHUTDOWN + 5)
                exits.append(round(took, 1))
            sending.result(timeout=PATIENCE)
    finally:
        balancer.close()
    run.mark("sent", start)
    with raw_connection(url) as raw:
        wait_all_done(raw, ROLLING_MESSAGES, PATIENCE, run, start)
        rows = message_rows(raw)
        events = event_rows(raw)
    hooks = final_hooks(receiver, ROLLING_MESSAGES)
    stats = httpx.get(f"{carrier.url}/stats", timeout=10).json()
    logs = fleet.logs("worker")

    assert len(run.accepted) == ROLLING_MESSAGES  # every send answered 200, none lost
    check_stored_once_and_final(run, rows, events)
    check_billed_once(run, rows, events, hooks)
    assert {mid: r.reclaims for mid, r in rows.items() if r.reclaims} == {}
    assert "claimed again after the lease" not in logs
    assert (stats["repeats"], stats["repeated"]) == (0, [])  # nothing handed over twice
    assert all(took <= SHUTDOWN for took in exits), exits
    with capsys.disabled():
        print(
            f"\nrolling restart {backend_name}: exits {exits} s, refused {balancer.refused}, "
            f"seconds {run.seconds}"
        )


# -- driving ------------------------------------------------------------------------


@contextmanager
def statistics_kept(url: str, every: float = 5.0) -> Iterator[None]:
    """ANALYZE the busy tables every few seconds when PostgreSQL's autovacuum is off.

    The CI server runs without autovacuum. Without statistics the planner takes the
    tables just filled for empty, and the webhook claim's plan turns quadratic in
    the pending events (more than a minute per claim at 20,000): autovacuum's job,
    done here.
    """
    if not url.startswith("postgresql"):
        yield
        return
    stop = threading.Event()

    def keep() -> None:
        with raw_connection(url) as raw:
            if raw.scalar("SHOW autovacuum") == "on":
                return
            while not stop.wait(every):
                raw.execute("ANALYZE messages")
                raw.execute("ANALYZE message_events")

    thread = threading.Thread(target=keep, name="analyze", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def send_share(
    apis: list[str], headers: dict[str, str], case: Case, sender: int
) -> list[tuple[int, dict[str, int]]]:
    """This sender's batches (every `senders`-th), through the APIs in turn."""
    sent = []
    batches = range(sender, -(-case.messages // BATCH), case.senders)
    with clients_of(apis) as clients:
        for number, b in enumerate(batches):
            indices = range(b * BATCH, min((b + 1) * BATCH, case.messages))
            client = clients[(number + sender) % len(clients)]
            answer = client.post(
                "/bat/messagelist",
                json={"messages": [message(i) for i in indices]},
                headers=headers,
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            entries = body["messages"]
            assert [e["status"] for e in entries] == ["accepted"] * len(indices), entries[:3]
            sent.append(
                (
                    body["messagelistId"],
                    {e["messageId"]: i for e, i in zip(entries, indices, strict=True)},
                )
            )
    return sent


@contextmanager
def clients_of(urls: list[str]) -> Iterator[list[httpx.Client]]:
    clients = [httpx.Client(base_url=u, timeout=60) for u in urls]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


def wait_for_submissions(url: str, threshold: int, sending: list[Future[Any]]) -> None:
    """Until the carrier has had `threshold` submissions (while the senders are healthy)."""
    deadline = time.monotonic() + PATIENCE
    while httpx.get(f"{url}/stats", timeout=10).json()["submissions"] < threshold:
        for future in sending:
            if future.done() and future.exception() is not None:
                future.result()
        assert time.monotonic() < deadline, f"the carrier never got {threshold} submissions"
        time.sleep(0.05)


def busiest(raw: Raw, workers: list[Started], patience: float = 5.0) -> Started:
    """The worker holding the most claims right now (it has messages in flight)."""
    by_pid = {w.proc.pid: w for w in workers}
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        held = raw.execute(
            "SELECT claimed_by, count(*) FROM messages WHERE claimed_until > ? GROUP BY claimed_by",
            (time.time(),),
        ).fetchall()
        # Worker names are host:pid:random.
        counts = {int(name.rsplit(":", 2)[1]): n for name, n in held}
        holding = [pid for pid in sorted(counts, key=counts.__getitem__) if pid in by_pid]
        if holding:
            return by_pid[holding[-1]]
        time.sleep(0.005)
    return workers[0]


def watch(api: Server, account: Account, sending: list[Future[Any]]) -> list[Trace]:
    """Follow a few messages of the first batch through the API (the harness checks that
    statuses only go forward, and `cost` comes with the final one)."""
    while not any(f.done() for f in sending):
        time.sleep(0.05)
    first = next(f for f in sending if f.done()).result()
    ids = list(first[0][1])
    traces = api.wait_all(account, ids[:: max(1, len(ids) // 10)], timeout=PATIENCE, interval=0.5)
    return list(traces.values())


def wait_all_done(raw: Raw, total: int, timeout: float, run: Run, start: float) -> None:
    """Until every message is final and every webhook event delivered (by the database)."""
    deadline = time.monotonic() + timeout
    while True:
        stored, open_ = raw.execute("SELECT count(*), count(due_at) FROM messages").fetchone()
        if stored == total and open_ == 0:  # final messages have no due time
            break
        assert time.monotonic() < deadline, f"{open_} of {stored} messages not final"
        time.sleep(0.5)
    run.mark("all final", start)
    while True:
        (pending,) = raw.execute(
            "SELECT count(*) FROM message_events WHERE state = 'pending'"
        ).fetchone()
        if pending == 0:
            break
        assert time.monotonic() < deadline, f"{pending} webhook events not delivered"
        time.sleep(0.5)
    run.mark("webhooks delivered", start)


def final_hooks(receiver: Receiver, total: int) -> dict[str, dict[str, Any]]:
    """What the receiver acknowledged: message id -> the payload of its final event.

    One final webhook id per message (an event may arrive twice: at least once)."""
    finals: dict[str, dict[str, Any]] = {}
    ids: set[str] = set()
    for hook in receiver.hooks():
        payload = hook.payload
        if payload["deliverystatus"] in FINAL and hook.acked:
            ids.add(hook.webhook_id)
            assert finals.setdefault(payload["messageId"], payload) == payload
    assert len(ids) == len(finals) == total, (len(ids), len(finals))
    return finals


# -- reading back -------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    status: str
    bill: int | None
    reclaims: int
    claimed_by: str | None
    customer_id: str


def message_rows(raw: Raw) -> dict[str, Row]:
    result = raw.execute(
        "SELECT id, status, bill_micros, reclaims, claimed_by, customer_message_id FROM messages"
    )
    return {r[0]: Row(r[1], r[2], r[3], r[4], r[5]) for r in result}


def event_rows(raw: Raw) -> dict[str, list[tuple[str, str | None]]]:
    """Every message's history in order: (status, webhook payload)."""
    history: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for mid, status, payload in raw.execute(
        "SELECT message_id, status, payload FROM message_events ORDER BY id"
    ):
        history[mid].append((status, payload))
    return history


# -- the checks ---------------------------------------------------------------------


def check_stored_once_and_final(
    run: Run, rows: dict[str, Row], events: dict[str, list[tuple[str, str | None]]]
) -> None:
    assert set(rows) == set(run.accepted), "the stored messages are exactly the accepted ones"
    wrong = {}
    for mid, index in run.accepted.items():
        kind, row = kind_of(index), rows[mid]
        history = [status for status, _ in events[mid]]
        walk = [row.status] if row.status == "permanenterror" else ["processing", row.status]
        if not kind.allows(row.status) or (history, row.claimed_by, row.customer_id) != (
            walk,
            None,
            f"c{index}",
        ):
            wrong[mid] = (kind.ending, row, history)
    assert not wrong, f"{len(wrong)} messages went wrong, e.g. {list(wrong.items())[:3]}"


def check_billed_once(
    run: Run,
    rows: dict[str, Row],
    events: dict[str, list[tuple[str, str | None]]],
    hooks: dict[str, dict[str, Any]],
) -> None:
    """The bill each message calls for, set once: in its row, its one final event, and
    the final webhook."""
    expected = {mid: kind_of(i).billed for mid, i in run.accepted.items()}
    assert {mid: r.bill for mid, r in rows.items()} == expected
    for mid, bill in expected.items():
        (final,) = [json.loads(p or "{}") for s, p in events[mid] if s in FINAL]
        assert round(final["cost"] * 1_000_000) == bill == round(hooks[mid]["cost"] * 1_000_000)


def check_api_answers(
    apis: list[Server], headers: dict[str, str], run: Run, rows: dict[str, Row]
) -> None:
    """What the APIs answer agrees with the table: every message list's counts per
    status and its cost, and the status and cost of every message of the magic
    endings and of every tenth other one (each API answering a share)."""
    sample = [mid for mid, i in run.accepted.items() if kind_of(i) is not NORMAL or i % 10 == 0]

    async def read_all() -> tuple[list[Any], list[Any]]:
        limit = asyncio.Semaphore(32)
        async with aiohttp.ClientSession(headers=headers) as http:

            async def get(n: int, path: str) -> Any:
                async with limit, http.get(f"{apis[n % len(apis)].base_url}{path}") as r:
                    assert r.status == 200, await r.text()
                    return await r.json()

            lists = [get(n, f"/bat/messagelist/{list_id}") for n, list_id in enumerate(run.lists)]
            messages = [get(n, f"/bat/message/{mid}") for n, mid in enumerate(sample)]
            return await asyncio.gather(*lists), await asyncio.gather(*messages)

    summaries, answers = asyncio.run(read_all())
    for summary, ids in zip(summaries, run.lists.values(), strict=True):
        counts = Counter(rows[mid].status for mid in ids)
        assert {s: n for s, n in summary["counts"].items() if n} == counts, summary
        assert round(summary["cost"] * 1_000_000) == sum(rows[mid].bill or 0 for mid in ids)
    wrong = [
        (mid, a)
        for mid, a in zip(sample, answers, strict=True)
        if (a["deliverystatus"], round(a["cost"] * 1_000_000)) != (rows[mid].status, rows[mid].bill)
    ]
    assert not wrong, wrong[:5]


def check_repeats_within_bound(
    case: Case, run: Run, rows: dict[str, Row], stats: dict[str, Any], logs: str
) -> dict[str, Any]:
    """Hand-overs repeated by the carrier's count: bounded, and each one a counted re-claim.

    Besides repeats, the carrier may count hand-overs the table does not show: after
    an answer that never came (the carrier may have taken the message; the retry is
    a new attempt), and for a message a killed worker handed over whose TTL ran out
    before its lease did (it expired as queued, though the carrier had it).
    """
    handed = {mid: kind_of(i).handed_over(rows[mid].status) for mid, i in run.accepted.items()}
    reclaims = {mid: r.reclaims for mid, r in rows.items() if r.reclaims}
    expired_in_flight = sum(1 for mid in reclaims if not handed[mid])
    repeats: Counter[str] = Counter()
    for entry in stats["repeated"]:
        repeats[entry["messageId"]] += entry["count"] - 1
    figures = {
        "messages": len(run.accepted),
        "kills": len(run.killed),
        "hand-overs": stats["handovers"],
        "recorded hand-overs": sum(handed.values()),
        "unanswered hand-overs": logs.count("no answer from the sandbox carrier"),
        "expired in flight": expired_in_flight,
        "carrier submissions": stats["submissions"],
        "carrier repeats": stats["repeats"],
        "reclaims": sum(reclaims.values()),
        "logged reclaims": logs.count("claimed again after the lease"),
    }
    unseen = figures["unanswered hand-overs"] + expired_in_flight
    assert 0 <= stats["handovers"] - figures["recorded hand-overs"] <= unseen, figures
    handed_messages = sum(1 for n in handed.values() if n)
    # A message whose every hand-over went unanswered can end without a recorded one.
    assert 0 <= stats["messages"] - handed_messages <= unseen, figures
    # Only the killed workers' leases ran out: a tick that outlived its lease would
    # mean the lease is too short for this machine (the bound holds per crash).
    lapsed = {int(m) for m in re.findall(r"after the lease of [^:\s]+:(\d+):\w+ ran out", logs)}
    assert lapsed <= set(run.killed), f"leases ran out without a crash: {lapsed}, {run.killed}"
    bound = BATCH_SIZE * len(run.killed)
    assert sum(repeats.values()) == stats["repeats"] <= bound, figures
    assert sum(reclaims.values()) <= bound, figures
    unmatched = {mid: n for mid, n in repeats.items() if reclaims.get(mid, 0) < n}
    assert not unmatched, f"repeats without a re-claim: {unmatched}"
    assert figures["logged reclaims"] == figures["reclaims"], figures
    return figures
