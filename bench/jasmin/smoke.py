"""Smoke run of the Jasmin side of the benchmark: install, start, send, get DLRs, stop.

Run with batgate's interpreter: ``.venv/bin/python bench/jasmin/smoke.py``. It starts
smsc34 (our test SMSC) on free ports, brings Jasmin up with one connector, and measures
(1) submit->DLR latency for 50 messages paced at 20/s, (2) end-to-end rate: 300
messages sent flat out, until their 300 level-2 DLRs are back, (3) the raw /send
acceptance rate: 2,000 requests from 16 concurrent clients. It then repeats (2) with 4
connectors. Exit 0 when every DLR arrived and nothing of Jasmin or the SMSC is left.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiohttp import web

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from jasmin_gateway import Jasmin, free_port, install, running_daemons  # noqa: E402

REPO = HERE.parent.parent
SMSC = REPO / "tests" / "peers" / "smsc34.py"
HOST = "127.0.0.1"
CLK_TCK = 100  # USER_HZ: /proc/PID/stat counts CPU time in these ticks


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def destination(i: int) -> str:
    """A distinct number per message, ending in 1234: never one of smsc34's special
    suffixes (0001-0010: failures, throttling, held submits)."""
    return f"336{i:06d}1234"


# -- the DLR receiver ------------------------------------------------------------------


@dataclass
class Receiver:
    """Collects Jasmin's DLR callbacks, answering ``ACK/Jasmin`` as dlrd requires."""

    port: int = 0
    arrived: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    waiters: list[tuple[set[str], asyncio.Future[None]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/dlr"

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        msgid, status = str(form.get("id", "")), str(form.get("message_status", ""))
        if str(form.get("level")) == "2":
            self.arrived.setdefault(msgid, time.monotonic())
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self._wake()
        return web.Response(text="ACK/Jasmin")

    def _wake(self) -> None:
        for ids, future in self.waiters:
            if not future.done() and ids.issubset(self.arrived.keys()):
                future.set_result(None)

    async def wait_for(self, ids: set[str], timeout: float) -> bool:
        """Whether every id in `ids` got its level-2 DLR within `timeout` seconds."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append((ids, future))
        self._wake()
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False


async def start_receiver(receiver: Receiver) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/dlr", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    receiver.port = runner.addresses[0][1]
    return runner


# -- CPU and memory of Jasmin's processes ------------------------------------------------


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """utime+stime per group, from /proc/PID/stat (fields 14 and 15)."""
    totals = {}
    for group, members in pids.items():
        ticks = 0
        for pid in members:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])
        totals[group] = ticks / CLK_TCK
    return totals


def peak_rss_mib(pids: dict[str, list[int]]) -> dict[str, float]:
    """VmHWM (peak resident set) per group, in MiB."""
    totals = {}
    for group, members in pids.items():
        kib = 0
        for pid in members:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            kib += next(
                (int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM:")), 0
            )
        totals[group] = kib / 1024
    return totals


@contextmanager
def cpu_report(jasmin: Jasmin, label: str, messages: int) -> Iterator[None]:
    """Logs the CPU each process group used during the block, per message."""
    pids = jasmin.pids()
    before = cpu_seconds(pids)
    yield
    after = cpu_seconds(pids)
    used = {g: after[g] - before[g] for g in after}
    text = ", ".join(f"{g} {s:.1f}s" for g, s in used.items() if s >= 0.05)
    per = 1000 * sum(v for g, v in used.items() if g in ("jasmind", "dlrd", "dlrlookupd"))
    log(f"  CPU during {label}: {text}; Jasmin daemons {per / messages:.1f} ms/message")


# -- the phases ---------------------------------------------------------------------------


async def send_one(client: httpx.AsyncClient, jasmin: Jasmin, i: int, dlr_url: str) -> str:
    response = await client.get(jasmin.send_url(destination(i), f"smoke {i}", dlr_url))
    response.raise_for_status()
    return jasmin.message_id(response.text)


async def run_concurrently(count: int, workers: int, job: Callable[[int], Awaitable[None]]) -> None:
    """Runs job(0..count-1) with at most `workers` in flight."""
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await job(i)

    await asyncio.gather(*(worker() for _ in range(workers)))


async def latency_phase(jasmin: Jasmin, receiver: Receiver, count: int, rate: float) -> bool:
    """`count` messages at a steady `rate`/s; submit->DLR p50/p99."""
    sent: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        start = time.monotonic()
        for i in range(count):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            t0 = time.monotonic()
            sent[await send_one(client, jasmin, i, receiver.url)] = t0
    ok = await receiver.wait_for(set(sent), timeout=60 + count / 5)
    latencies = sorted(receiver.arrived[m] - t for m, t in sent.items() if m in receiver.arrived)
    got = len(latencies)
    if got:
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(got - 1, int(0.99 * got))] * 1000
        slow = sum(1 for t in latencies if t > 5)
        log(
            f"  latency: {got}/{count} DLRs at {rate:.0f}/s; p50 {p50:.0f} ms,"
            f" p99 {p99:.0f} ms; {slow} over 5 s (a DLR lookup retry)"
        )
    else:
        log(f"  latency: 0/{count} DLRs")
    return ok


async def e2e_phase(jasmin: Jasmin, receiver: Receiver, smsc: Smsc, count: int, base: int) -> bool:
    """`count` messages sent flat out, then three rates: the SMSC's submit_sm rate (what
    the connectors sustain), the rate until 95 % of the DLRs are back, and until all are
    (the last ones include any DLR that waited for a lookup retry)."""
    ids: dict[str, None] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        before = await smsc.submits(client)

        async def job(i: int) -> None:
            ids[await send_one(client, jasmin, base + i, receiver.url)] = None

        with cpu_report(jasmin, "end to end", count):
            start = time.monotonic()
            await run_concurrently(count, 16, job)
            accepted = time.monotonic() - start
            submitted = await wait_submits(smsc, client, before + count, start, 60 + count / 5)
            ok = await receiver.wait_for(set(ids), timeout=60 + count / 5)
    times = sorted(receiver.arrived[m] - start for m in ids if m in receiver.arrived)
    log(
        f"  end to end, {jasmin.connectors} connector(s): {len(times)}/{count} DLRs;"
        f" /send accepted all in {accepted:.1f} s"
    )
    if times:
        p95 = times[max(0, int(0.95 * len(times)) - 1)]
        log(
            f"    SMSC got {count} submits in {submitted:.1f} s = {count / submitted:.1f}/s;"
            f" 95 % of DLRs in {p95:.1f} s = {0.95 * count / p95:.1f} msg/s;"
            f" all in {times[-1]:.1f} s = {len(times) / times[-1]:.1f} msg/s"
        )
    return ok


async def wait_submits(
    smsc: Smsc, client: httpx.AsyncClient, target: int, since: float, timeout: float
) -> float:
    """Seconds from `since` until the SMSC has counted `target` submits."""
    while await smsc.submits(client) < target:
        if time.monotonic() - since > timeout:
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - since


async def send_rate_phase(jasmin: Jasmin, receiver: Receiver, count: int, base: int) -> None:
    """/send acceptance only: `count` requests, 16 concurrent (their DLRs are not awaited)."""
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def job(i: int) -> None:
            await send_one(client, jasmin, base + i, receiver.url)

        with cpu_report(jasmin, "/send burst", count):
            start = time.monotonic()
            await run_concurrently(count, 16, job)
            elapsed = time.monotonic() - start
    log(f"  /send: {count} accepted in {elapsed:.1f} s = {count / elapsed:.0f}/s (16 clients)")


# -- orchestration -------------------------------------------------------------------------


@dataclass(frozen=True)
class Smsc:
    port: int
    control_port: int

    async def submits(self, client: httpx.AsyncClient) -> int:
        response = await client.get(f"http://{HOST}:{self.control_port}/stats")
        count: int = response.json()["submits"]
        return count


@contextmanager
def smsc34(receipt_delay: float) -> Iterator[Smsc]:
    """Our SMSC on free ports, counters only; always stopped."""
    smsc = Smsc(free_port(), free_port())
    argv = [sys.executable, str(SMSC), "--port", str(smsc.port)]
    argv += ["--control-port", str(smsc.control_port), "--no-records"]
    argv += ["--receipt-delay", str(receipt_delay)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=REPO)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("smsc34 did not start")
        yield smsc
    finally:
        proc.terminate()
        proc.wait(10)


async def one_deployment(smsc: Smsc, connectors: int, args: argparse.Namespace) -> bool:
    receiver = Receiver()
    runner = await start_receiver(receiver)
    try:
        started = time.monotonic()
        with Jasmin(smsc.port, connectors=connectors, log=log) as jasmin:
            log(f"Jasmin ({connectors} connector(s)) started in {time.monotonic() - started:.1f} s")
            ok = True
            if connectors == 1:
                ok &= await latency_phase(jasmin, receiver, args.latency, rate=20.0)
            ok &= await e2e_phase(jasmin, receiver, smsc, args.e2e, base=100_000)
            if connectors == 1:
                await send_rate_phase(jasmin, receiver, args.burst, base=200_000)
            rss = peak_rss_mib(jasmin.pids())
            log("  peak RSS: " + ", ".join(f"{g} {m:.0f} MiB" for g, m in rss.items()))
            log(f"  DLR statuses: {receiver.statuses}")
            stopping = time.monotonic()
        log(f"Jasmin stopped in {time.monotonic() - stopping:.1f} s")
        return ok
    finally:
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=50, help="messages of the latency phase")
    parser.add_argument("--e2e", type=int, default=300, help="messages of the end-to-end phase")
    parser.add_argument("--burst", type=int, default=2000, help="requests of the /send phase")
    parser.add_argument("--connectors", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--receipt-delay", type=float, default=0.0, help="smsc34's delay before each receipt"
    )
    args = parser.parse_args()

    started = time.monotonic()
    install(log)
    log(f"install checked in {time.monotonic() - started:.1f} s")
    ok = True
    for connectors in args.connectors:
        # A fresh SMSC per deployment: smsc34 keeps the receipts it could not deliver and
        # sends them on the next bind of the same system_id, i.e. to the next Jasmin.
        with smsc34(args.receipt_delay) as smsc:
            ok &= asyncio.run(one_deployment(smsc, connectors, args))
    left = running_daemons()
    if left:
        log(f"FAIL: Jasmin processes left behind: {left}")
        return 1
    log("OK" if ok else "FAIL: some DLRs did not arrive")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
