"""`make bench-vs-kannel`: batgate and Kannel side by side — same machine, same SMSC, same load.

Kannel is Debian's (bearerbox + smsbox, one SMPP transceiver bind with
`max-pending-submits = 100`, bench/kannel.py's configuration); batgate is `batgate
serve` on SQLite with one SMPP connector (one connection, window 100). Each
measurement gets a fresh deployment and a fresh SMSC (tests/peers/smsc34.py, a
DELIVRD receipt 50 ms after each submit), and both gateways the same load:

1. HTTP submit, one message per request: Kannel's `GET /cgi-bin/sendsms`
   (`dlr-mask=31`, a `dlr-url` to the receiver) against batgate's `POST
   /bat/messagelist` with one SMS (a webhook to the receiver) — wrk, the same
   connections, threads and duration, each request to one of 10,000 recipients in
   turn; requests/s and the non-2xx answers.
2. End to end: N messages (2,000; `--quick` 500), each its own request and its own
   recipient, sent once by wrk as fast as its connections go (bench/lua/once.lua);
   the time from the start until the receiver had every message's final callback —
   Kannel's DLR of type 1 or 2 (or 16, a rejection; `dlr-mask=31` also calls with
   type 8, the SMSC's acknowledgement: not counted), batgate's webhook saying delivered or
   undeliverable (after a `processing` one: two callbacks a message on both sides).
3. CPU per message over (2), all the gateway's processes (bearerbox + smsbox; `batgate
   serve`), from /proc.
4. Latency at a steady 20 messages/s for 15 s (`--quick` 5 s), one message a
   request, open loop: from the moment each request is sent to its final callback
   at the receiver, p50 and p99.
5. HTTP submit, 100 messages per request: batgate's `POST /bat/messagelist` with 100
   SMS against Kannel's `sendsms` with 100 receivers in `to` (space-separated); wrk as
   in (1); messages/s accepted.
6. (2) against a bare asyncio SMPP client's submit rate (bench/smpp_bare.py: one bind,
   the same window, hand-packed PDUs) measured once per round against a fresh SMSC of
   the same kind, on the gateways' CPU.

The receiver is one small ASGI app in a process of its own (`python bench/vs_kannel.py
receiver --port N`), the same for both. Both gateways run on CPU 1; the SMSC, wrk,
the receiver and this script on CPU 0 (bench/procs.py's conventions). Without
`--quick` each side runs twice, alternating (Kannel, batgate, Kannel, batgate), and
the table shows medians. Kannel's processes are stopped with SIGTERM as soon as a
measurement ends (bearerbox can take 40 s to exit) and waited for in the background,
SIGKILL after 45 s. Prints one table; writes bench/results/vs-kannel.json and a chart,
bench/results/vs-kannel.png (`--chart PATH` for another place) when matplotlib is
installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode

import httpx
import kannel
import orjson
import report
import seeding
import smpp
import wrk
from cpu import Watch, core_ticks, process_ticks
from procs import (
    LOCALHOST,
    BenchError,
    Child,
    Processes,
    free_port,
    log,
    pinned,
    pinning_available,
    wait_ready,
)
from servers import SERVER_CPU, Servers, base_env, batgate_argv

LOAD_CPU = 0  # the SMSC, wrk, the receiver and this script; the gateways: SERVER_CPU
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
THIS = Path(__file__).resolve()
CHART = report.RESULTS_DIR / "vs-kannel.png"
TEXT = "Your order #1001 is confirmed"
SENDER = "Shop"
WINDOW = 100  # batgate's SMPP window; Kannel's max-pending-submits (bench/kannel.py)
CONNECTIONS = 32  # wrk's, rows 1 and 2, both gateways
THREADS = 1  # wrk's
RATE = 20.0  # messages/s, row 4
BATCH = 100  # messages per request, row 5
RECEIPT_DELAY = kannel.RECEIPT_DELAY  # the SMSC's, seconds after each submit
STALL_S = 20.0  # row 2: no callback for this long, and the run has failed
KILL_AFTER_S = 45.0  # SIGTERM, then SIGKILL: bearerbox may take 40 s
FINAL_DLR_TYPES = kannel.FINAL_DLR_TYPES  # Kannel: 1 delivered, 2 undelivered, 16 rejected
FINAL_STATUSES = frozenset({"delivered", "undeliverable", "permanenterror"})  # batgate's
SIDES = ("kannel", "batgate")


@dataclass
class Settings:
    quick: bool
    rounds: int
    seconds: float  # row 1: one timed wrk run
    warmup: float  # row 1: a discarded wrk run before it
    messages: int  # row 2
    steady_seconds: float  # row 4
    connections: int = CONNECTIONS
    threads: int = THREADS
    split: bool = False  # batgate as `serve --no-workers` + `batgate worker`
    sides: tuple[str, ...] = ("kannel", "batgate")  # --only: one of them


# -- the receiver: its own process, the same for both gateways --------------------------------


class _Book:
    def __init__(self) -> None:
        self.finals: dict[str, float] = {}  # message id -> when its final callback came
        self.firsts: dict[str, float] = {}  # … and its first other one (type 8; processing)
        self.callbacks = 0

    def add(self, message_id: str, final: bool) -> None:
        self.callbacks += 1
        (self.finals if final else self.firsts).setdefault(message_id, time.time())


_BOOK = _Book()
_OK = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
_OK_BODY = {"type": "http.response.body", "body": b"ok"}


async def _lifespan(receive: Any, send: Any) -> None:
    for _ in range(2):
        kind = (await receive())["type"]
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})


def _handle(path: str, query: bytes, body: bytes) -> bytes | None:
    """One request to the receiver; a JSON answer, or None for a plain "ok"."""
    if path == "/dlr":  # Kannel: GET /dlr?id=N&type=T (its dlr-url, T from %d)
        fields = parse_qs(query.decode())
        _BOOK.add(fields.get("id", [""])[0], fields.get("type", [""])[0] in FINAL_DLR_TYPES)
    elif path == "/hook":  # batgate: POST, JSON with messageId and deliverystatus
        doc = orjson.loads(body)
        _BOOK.add(str(doc.get("messageId")), doc.get("deliverystatus") in FINAL_STATUSES)
    elif path == "/count":
        return orjson.dumps({"finals": len(_BOOK.finals), "callbacks": _BOOK.callbacks})
    elif path == "/finals":
        return orjson.dumps(_BOOK.finals)
    elif path == "/firsts":
        return orjson.dumps(_BOOK.firsts)
    elif path == "/reset":
        _BOOK.finals.clear()
        _BOOK.firsts.clear()
        _BOOK.callbacks = 0
    return None


async def receiver_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Kannel's DLRs (`GET /dlr?id=…&type=…`) and batgate's webhooks (`POST /hook`, JSON),
    each message's final one's arrival time kept, and its first other one's; `GET /count`,
    `GET /finals`, `GET /firsts`, `POST /reset` for the bench. A bare ASGI app under
    uvicorn, as bench/receiver.py."""
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:  # read the whole body, as a real receiver would
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = _handle(scope["path"], scope["query_string"], body)
    if answer is None:
        await send(_OK)
        await send(_OK_BODY)
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def serve_receiver(port: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        receiver_app,
        host=LOCALHOST,
        port=port,
        access_log=False,
        log_level="warning",
        # The bench's own client may sit idle for longer than uvicorn's 5 s default
        # (row 4's sending); a connection closed as the next request goes out on it
        # fails that request.
        timeout_keep_alive=600,
    )
    uvicorn.Server(config).run()


class Receiver:
    """`python bench/vs_kannel.py receiver` in a process of its own, on the load's CPU."""

    def __init__(self, procs: Processes) -> None:
        self.port = free_port()
        argv = [sys.executable, str(THIS), "receiver", "--port", str(self.port)]
        self.child = procs.start("receiver", argv, base_env(), LOAD_CPU)
        wait_ready(self.child, f"{self.url}/count")
        self._client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def reset(self) -> None:
        self._client.post("/reset")

    def count(self) -> tuple[int, int]:
        doc = self._client.get("/count").json()
        return int(doc["finals"]), int(doc["callbacks"])

    def finals(self, which: str = "finals") -> dict[str, float]:
        """Each message's final callback's arrival ("firsts": its first other one's)."""
        return {str(k): float(v) for k, v in self._client.get(f"/{which}").json().items()}


# -- the gateways --------------------------------------------------------------------------------


class Gateway(Protocol):
    side: str
    url: str  # what wrk targets

    def pids(self) -> list[int]: ...

    def submit_load(self, work: Path, to: Sequence[str]) -> tuple[str, list[str]]:
        """Row 1: the wrk script (bench/lua/NAME.lua) and its arguments."""
        ...

    def once_args(self, work: Path, to: Sequence[str]) -> list[str]:
        """Row 2: bench/lua/once.lua's kind, file (and API key)."""
        ...

    def batch_load(self, work: Path, to: Sequence[str], size: int) -> tuple[str, list[str]]:
        """Row 5: like submit_load, `size` recipients per request."""
        ...

    async def send_one(self, client: httpx.AsyncClient, n: int, to: str) -> str:
        """Row 4: one message in one request; the id its final callback will carry."""
        ...


def numbers(count: int, seed: int) -> list[str]:
    """Distinct valid numbers that the SMSC treats as it treats any (a DELIVRD receipt)."""
    pool = seeding.phone_pool(count + 100, seed)
    return [n for n in pool if n[-4:] not in smpp.SMSC_ENDINGS][:count]


class KannelGateway:
    side = "kannel"

    def __init__(self, found: kannel.Kannel, receiver: Receiver, dlr_mask: str = "31") -> None:
        self.found = found
        self.receiver = receiver
        self.dlr_mask = dlr_mask  # 31: every report; 19: the finals and SMSC refusals
        self.url = found.sendsms_url.split("/cgi-bin/")[0]

    def pids(self) -> list[int]:
        return self.found.pids

    def batch_load(self, work: Path, to: Sequence[str], size: int) -> tuple[str, list[str]]:
        # sendsms takes several receivers in `to`, separated by spaces
        groups = [" ".join(to[i : i + size]) for i in range(0, len(to) - size + 1, size)]
        path = work / "kannel-batches.txt"
        path.write_text(
            "".join(f"/cgi-bin/sendsms?{self.query(n, g)}\n" for n, g in enumerate(groups))
        )
        return "get", [str(path)]

    def query(self, n: int, to: str) -> str:
        """sendsms's query; the dlr-url percent-encoded as a whole, as Kannel wants it
        (its own `%d` becomes the DLR's type)."""
        dlr = f"{self.receiver.url}/dlr?id={n}&type=%d"
        return urlencode(
            {
                "username": kannel.USER,
                "password": kannel.PASSWORD,
                "from": SENDER,
                "to": to,
                "text": TEXT,
                "dlr-mask": self.dlr_mask,
                "dlr-url": dlr,
            }
        )

    def _paths(self, work: Path, name: str, to: Sequence[str]) -> Path:
        path = work / name
        path.write_text("".join(f"/cgi-bin/sendsms?{self.query(n, t)}\n" for n, t in enumerate(to)))
        return path

    def submit_load(self, work: Path, to: Sequence[str]) -> tuple[str, list[str]]:
        return "get", [str(self._paths(work, "kannel-submit.txt", to))]

    def once_args(self, work: Path, to: Sequence[str]) -> list[str]:
        return ["get", str(self._paths(work, "kannel-once.txt", to))]

    async def send_one(self, client: httpx.AsyncClient, n: int, to: str) -> str:
        answer = await client.get(f"{self.found.sendsms_url}?{self.query(n, to)}")
        if answer.status_code // 100 != 2:
            raise BenchError(f"sendsms: HTTP {answer.status_code}: {answer.text[:200]}")
        return str(n)


class BatgateGateway:
    side = "batgate"

    def __init__(self, url: str, pid: int, key: str, worker: int | None = None) -> None:
        self.url = url
        self.pid = pid
        self.key = key
        self.worker = worker  # `batgate worker`'s pid, with --split

    def pids(self) -> list[int]:
        return [self.pid] if self.worker is None else [self.pid, self.worker]

    @staticmethod
    def body(*to: str) -> bytes:
        messages = [{"from": SENDER, "to": t, "type": "sms", "text": TEXT} for t in to]
        return orjson.dumps({"messages": messages})

    def batch_load(self, work: Path, to: Sequence[str], size: int) -> tuple[str, list[str]]:
        path = work / "batgate-batches.txt"
        bodies = (self.body(*to[i : i + size]) for i in range(0, len(to) - size + 1, size))
        path.write_bytes(b"".join(b + b"\n" for b in bodies))
        return "send", [str(path), self.key]

    def _bodies(self, work: Path, name: str, to: Sequence[str]) -> Path:
        path = work / name
        path.write_bytes(b"".join(self.body(t) + b"\n" for t in to))
        return path

    def submit_load(self, work: Path, to: Sequence[str]) -> tuple[str, list[str]]:
        return "send", [str(self._bodies(work, "batgate-submit.txt", to)), self.key]

    def once_args(self, work: Path, to: Sequence[str]) -> list[str]:
        return ["post", str(self._bodies(work, "batgate-once.txt", to)), self.key]

    async def send_one(self, client: httpx.AsyncClient, n: int, to: str) -> str:
        headers = {"X-Authorization-Key": self.key, "Content-Type": "application/json"}
        answer = await client.post(
            f"{self.url}/bat/messagelist", content=self.body(to), headers=headers
        )
        if answer.status_code // 100 != 2:
            raise BenchError(f"messagelist: HTTP {answer.status_code}: {answer.text[:200]}")
        return str(answer.json()["messages"][0]["messageId"])


class Stopper:
    """Kannel's processes stopped in the background: SIGTERM to both at once, each
    waited for in a thread of its own, SIGKILL after 45 s; `finish` waits for them all."""

    def __init__(self, procs: Processes) -> None:
        self.procs = procs
        self._pending: list[tuple[Child, threading.Thread]] = []
        self.seconds: list[float] = []  # how long each took to exit

    def terminate(self, *children: Child) -> None:
        for child in children:
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            thread = threading.Thread(target=self._reap, args=(child,), daemon=True)
            thread.start()
            self._pending.append((child, thread))

    def _reap(self, child: Child) -> None:
        started = time.monotonic()
        try:
            child.proc.wait(KILL_AFTER_S)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                child.proc.wait(10)
        self.seconds.append(round(time.monotonic() - started, 1))

    def finish(self) -> None:
        if any(t.is_alive() for _, t in self._pending):
            log("waiting for Kannel's processes to exit (SIGKILL after 45 s)")
        for child, thread in self._pending:
            thread.join()
            self.procs.stop(child)  # closes its log; kills it if it is somehow still there
        self._pending.clear()


class Deployments:
    """A fresh gateway in front of a fresh SMSC, for one measurement."""

    def __init__(
        self,
        procs: Processes,
        servers: Servers,
        work: Path,
        receiver: Receiver,
        split: bool = False,
    ) -> None:
        self.split = split  # batgate's API and engine in two processes
        self.procs = procs
        self.servers = servers
        self.work = work
        self.receiver = receiver
        self.stopper = Stopper(procs)
        self._n = 0

    @contextmanager
    def smsc(self) -> Iterator[int]:
        with self.smsc_with_control() as (port, _control):
            yield port

    @contextmanager
    def smsc_with_control(self) -> Iterator[tuple[int, int]]:
        child, port, control = smpp.start_peer(self.procs, "--receipt-delay", str(RECEIPT_DELAY))
        try:
            yield port, control
        finally:
            self.procs.stop(child)

    @contextmanager
    def kannel(self) -> Iterator[KannelGateway]:
        self._n += 1
        with self.smsc() as port:
            found = kannel.start_kannel(
                self.procs, self.work / f"kannel-{self._n}", port, SERVER_CPU, f"-{self._n}"
            )
            try:
                yield KannelGateway(found, self.receiver)
            finally:
                self.stopper.terminate(found.smsbox, found.bearerbox)

    @contextmanager
    def batgate(self) -> Iterator[BatgateGateway]:
        self._n += 1
        name = f"batgate-{self._n}"
        with self.smsc() as port:
            db, key = self.servers.new_db(name)
            _cli(db, "accounts", "set-webhook", "bench", f"{self.receiver.url}/hook")
            config = db.with_suffix(".toml")
            config.write_text(smpp.carrier_toml(port, WINDOW))
            env = {"BATGATE_CONFIG": str(config)}
            if not self.split:
                with self.servers.batgate(name, db, workers=True, env=env) as server:
                    yield BatgateGateway(server.url, server.child.pid, key)
                return
            # The API alone in `serve --no-workers`, the engine in `batgate worker`: both
            # on the gateway's core, as bearerbox and smsbox are.
            with (
                self.servers.batgate(name, db, workers=False, env=env) as server,
                self.servers.worker(f"{name}-worker", db, env) as worker,
            ):
                yield BatgateGateway(server.url, server.child.pid, key, worker.pid)

    def deployed(self, side: str) -> AbstractContextManager[Gateway]:
        return self.kannel() if side == "kannel" else self.batgate()


def _cli(db: Path, *args: str) -> None:
    env = base_env() | {"BATGATE_DATABASE_URL": f"sqlite:///{db}"}
    done = subprocess.run(
        [*batgate_argv(), *args], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise BenchError(f"batgate {' '.join(args)}: {done.stderr}")


# -- the measurements ----------------------------------------------------------------------------


def _ticks(pids: Sequence[int]) -> int:
    return sum(process_ticks(p) or 0 for p in pids)


def _busy(before: dict[str, tuple[int, int, int]]) -> dict[str, float]:
    """Each core's busy share since `before` (core_ticks())."""
    out = {}
    for core, (busy, total, _irq) in core_ticks().items():
        busy0, total0, _ = before.get(core, (busy, total, 0))
        out[core.replace("cpu", "core")] = round((busy - busy0) / max(1, total - total0), 2)
    return out


def submit(g: Gateway, s: Settings, work: Path, batch: int = 1) -> dict[str, Any]:
    """Row 1 (and 5, with `batch` recipients per request): a discarded warm-up, then one
    timed wrk run."""
    to = numbers(10_000, seed=11)
    name, args = g.submit_load(work, to) if batch == 1 else g.batch_load(work, to, batch)
    script = wrk.build_script(name, work)
    watch = Watch(api=g.pids())
    load = wrk.Load(g.url, script, args, s.connections, 30, s.threads, watch=watch)
    wrk.run_once(load, s.warmup)
    run = wrk.run_once(load, s.seconds)
    out = {
        "requests_per_s": round(run.rps, 1),
        "messages_per_s": round(run.rps * batch, 1),
        "requests": run.requests,
        "non_2xx": run.errors["status"],
        "socket_errors": run.failures - run.errors["status"],
        "p50_ms": round(run.latency_us["p50"] / 1000, 1),
        "p99_ms": round(run.latency_us["p99"] / 1000, 1),
        # cores: the gateway's processes ("api") and each core's busy share (not wrk's
        # own figure: Kannel's processes reaped meanwhile would count as wrk's)
        "cores": {k: v for k, v in run.cpu.items() if k in ("api", "core0", "core1")},
    }
    log(f"{g.side}: ({1 if batch == 1 else 5}) submit, {batch} per request: {out}")
    return out


def _await_finals(
    proc: subprocess.Popen[str], receiver: Receiver, reports: Path, threads: int, expected: int
) -> tuple[int, int]:
    """Until the receiver has a final callback for every message that wrk's threads saw
    accepted (or for all `expected`); (accepted, non-2xx). Fails when wrk exits, when no
    callback came for STALL_S (a request lost on a broken connection: wrk's thread never
    sees its answer), or after 300 s."""
    started = moved = time.monotonic()
    seen = -1
    while True:
        finals, callbacks = receiver.count()
        done = sorted(reports.glob("thread-*"))
        if len(done) == threads:
            counts = [tuple(map(int, p.read_text().split())) for p in done]
            accepted, failed = sum(a - f for a, f in counts), sum(f for _a, f in counts)
            if finals >= accepted:
                return accepted, failed
        elif finals >= expected:
            return expected, 0
        now = time.monotonic()
        if callbacks != seen:
            seen, moved = callbacks, now
        if proc.poll() is not None:
            raise BenchError(f"wrk exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        if now - moved > STALL_S or now - started > 300:
            raise BenchError(
                f"{finals} of {expected} final callbacks after {now - started:.0f} s, none for "
                f"{now - moved:.0f} s ({callbacks} callbacks in all; wrk's threads done: "
                f"{len(done)} of {threads})"
            )
        time.sleep(0.05)


def _summary(out: str) -> dict[str, Any]:
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            return dict(orjson.loads(line.removeprefix("BENCH_JSON ")))
    return {}


def end_to_end(g: Gateway, s: Settings, work: Path, receiver: Receiver) -> dict[str, Any]:
    """Rows 2 and 3: every message sent once by wrk (once.lua); done when the receiver
    has every accepted message's final callback. CPU: the gateway's processes' ticks
    from just before wrk starts to then."""
    to = numbers(s.messages, seed=23)
    receiver.reset()
    reports = work / f"once-{g.side}-{time.monotonic_ns()}"
    reports.mkdir()
    kind, file, *key = g.once_args(work, to)
    # -d: only a bound; wrk gets a SIGINT as soon as the last final callback is in.
    argv = ["wrk", f"-t{s.threads}", f"-c{s.connections}", "-d600s", "--timeout=30s", "-s"]
    argv += [str(wrk.build_script("once", work)), g.url, "--", kind, file, str(s.threads)]
    argv += [str(reports), *key]
    pids = g.pids()
    before, cores = _ticks(pids), core_ticks()
    started = time.time()
    proc = subprocess.Popen(
        pinned(argv, wrk.WRK_CPU), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = ""
    try:
        try:
            accepted, failed = _await_finals(proc, receiver, reports, s.threads, len(to))
        except BenchError as exc:
            raise BenchError(f"{g.side}, end to end: {exc}") from None
        cpu_s = (_ticks(pids) - before) / TICKS_PER_S
        busy = _busy(cores)
        _finals, callbacks = receiver.count()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            output = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    arrived = receiver.finals()
    seconds = max(arrived.values()) - started
    answered = [p.stat().st_mtime for p in reports.glob("thread-*")]
    errors = _summary(output).get("errors", {})
    out = {
        "messages": len(to),
        "accepted": accepted,
        "non_2xx": failed,
        "socket_errors": sum(v for k, v in errors.items() if k != "status"),
        "finals": len(arrived),
        "callbacks": callbacks,
        "seconds": round(seconds, 2),
        "messages_per_s": round(len(arrived) / seconds, 1),
        "answered_in_s": round(max(answered) - started, 2) if answered else None,
        "cpu_s": round(cpu_s, 2),
        "cpu_ms_per_message": round(1000 * cpu_s / max(1, len(arrived)), 3),
        "cores_busy": busy,  # the gateway's CPU and the load's (SMSC, wrk, receiver)
    }
    log(f"{g.side}: (2, 3) end to end {out}")
    return out


async def _steady(g: Gateway, to: Sequence[str], rate: float) -> dict[str, float]:
    """Open loop: request n at start + n / rate, whether earlier ones were answered or
    not; each message's id and when its request went."""
    sent: dict[str, float] = {}
    start = time.monotonic()

    async def one(client: httpx.AsyncClient, n: int) -> None:
        at = time.time()
        sent[await g.send_one(client, n, to[n])] = at

    async with httpx.AsyncClient(timeout=60) as client:
        tasks = []
        for n in range(len(to)):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, n)))
        await asyncio.gather(*tasks)
    return sent


def steady(g: Gateway, s: Settings, receiver: Receiver) -> dict[str, Any]:
    """Row 4: send → final callback at a steady rate."""
    to = numbers(int(RATE * s.steady_seconds), seed=37)
    receiver.reset()
    sent = asyncio.run(_steady(g, to, RATE))
    deadline = time.monotonic() + 60
    while receiver.count()[0] < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    arrived, firsts = receiver.finals(), receiver.finals("firsts")
    got = sorted(arrived[i] - t for i, t in sent.items() if i in arrived)
    if not got:
        raise BenchError(f"{g.side}: no final callback at {RATE:g}/s")
    first = sorted(firsts[i] - t for i, t in sent.items() if i in firsts)
    out = {
        "sent": len(sent),
        "finals": len(got),
        "p50_ms": round(1000 * statistics.median(got), 1),
        "p99_ms": round(1000 * got[int(0.99 * (len(got) - 1))], 1),
        "max_ms": round(1000 * got[-1], 1),
        # to the first callback: Kannel's DLR type 8 (the SMSC's submit_sm_resp), batgate's
        # `processing` webhook (handed to the SMSC)
        "first_callback_p50_ms": round(1000 * statistics.median(first), 1) if first else None,
    }
    log(f"{g.side}: (4) at {RATE:g}/s {out}")
    return out


def one_side(
    side: str, deployments: Deployments, s: Settings, work: Path, receiver: Receiver
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with deployments.deployed(side) as g:
        out["submit"] = submit(g, s, work)
    with deployments.deployed(side) as g:
        out["end_to_end"] = end_to_end(g, s, work, receiver)
    with deployments.deployed(side) as g:
        out["steady"] = steady(g, s, receiver)
    with deployments.deployed(side) as g:
        out["batches"] = submit(g, s, work, batch=BATCH)
    return out


def http_floor(servers: Servers, s: Settings, work: Path) -> dict[str, Any]:
    """The floor of one HTTP exchange in Python here: bench/ceiling.py (a bare ASGI app
    under the uvicorn settings `batgate serve` uses, answering a fixed document) on the
    gateways' CPU, under row 1's load; its CPU per request."""
    paths = work / "ceiling-paths.txt"
    paths.write_text("/bat/message/x\n")
    with servers.ceiling() as server:
        watch = Watch(api=[server.child.pid])
        script = wrk.build_script("get", work)
        load = wrk.Load(server.url, script, [str(paths)], s.connections, 30, s.threads, watch=watch)
        wrk.run_once(load, s.warmup)
        run = wrk.run_once(load, s.seconds)
    cores = float(run.cpu.get("api", 0.0))
    out = {
        "requests_per_s": round(run.rps, 1),
        "cores": cores,
        "cpu_ms_per_request": round(1000 * cores / run.rps, 4) if run.rps else None,
    }
    log(f"the HTTP floor (a bare ASGI app): {out}")
    return out


def bare_client(deployments: Deployments, s: Settings) -> dict[str, Any]:
    """Row 6's yardstick: bench/smpp_bare.py (the plainest asyncio SMPP client, one bind,
    the same window) against a fresh SMSC of the same kind, on the gateways' CPU."""
    with deployments.smsc_with_control() as (port, control):
        out = smpp.client_run("smpp_bare.py", port, control, s.messages * 4, WINDOW)
    log(f"bare asyncio SMPP client: {out}")
    return out


# -- the table and the chart ---------------------------------------------------------------------


def medians(runs: Sequence[dict[str, Any]]) -> dict[str, float]:
    def m(row: str, key: str) -> float:
        return float(statistics.median(r[row][key] for r in runs))

    return {
        "submit_rps": m("submit", "requests_per_s"),
        "submit_non_2xx": m("submit", "non_2xx"),
        "e2e_per_s": m("end_to_end", "messages_per_s"),
        "cpu_ms": m("end_to_end", "cpu_ms_per_message"),
        "p50_ms": m("steady", "p50_ms"),
        "p99_ms": m("steady", "p99_ms"),
        "batch_msg_s": m("batches", "messages_per_s"),
        "batch_non_2xx": m("batches", "non_2xx"),
    }


def _ratio(b: float, k: float) -> str:
    if not k:
        return "—"
    r = b / k
    return f"×{r:,.2f}" if r < 10 else f"×{r:,.0f}"


def table(
    k: dict[str, float], b: dict[str, float], s: Settings, version: str, bare: float
) -> tuple[str, list[dict[str, str]]]:
    """The side-by-side rows; `bare`: the bare asyncio SMPP client's submit_sm/s."""
    rows = [
        (
            f"1. HTTP submit, 1 message per request, accepted (wrk, {s.connections} "
            f"connections, {s.seconds:g} s)",
            f"{k['submit_rps']:,.0f} req/s ({k['submit_non_2xx']:,.0f} non-2xx)",
            f"{b['submit_rps']:,.0f} req/s ({b['submit_non_2xx']:,.0f} non-2xx)",
            _ratio(b["submit_rps"], k["submit_rps"]),
        ),
        (
            f"2. end to end, {s.messages:,} messages, 1 per request → every final callback",
            f"{k['e2e_per_s']:,.0f} msg/s",
            f"{b['e2e_per_s']:,.0f} msg/s",
            _ratio(b["e2e_per_s"], k["e2e_per_s"]),
        ),
        (
            "3. CPU per message over row 2, all the gateway's processes",
            f"{k['cpu_ms']:.3f} ms",
            f"{b['cpu_ms']:.3f} ms",
            _ratio(b["cpu_ms"], k["cpu_ms"]),
        ),
        (
            f"4. send → final callback at {RATE:g} msg/s, p50 / p99",
            f"{k['p50_ms']:,.0f} / {k['p99_ms']:,.0f} ms",
            f"{b['p50_ms']:,.0f} / {b['p99_ms']:,.0f} ms",
            f"{_ratio(b['p50_ms'], k['p50_ms'])} / {_ratio(b['p99_ms'], k['p99_ms'])}",
        ),
        (
            f"5. HTTP submit, {BATCH} messages per request, accepted (Kannel: {BATCH} "
            "receivers in `to`)",
            f"{k['batch_msg_s']:,.0f} msg/s ({k['batch_non_2xx']:,.0f} non-2xx)",
            f"{b['batch_msg_s']:,.0f} msg/s ({b['batch_non_2xx']:,.0f} non-2xx)",
            _ratio(b["batch_msg_s"], k["batch_msg_s"]),
        ),
        (
            f"6. row 2 against a bare asyncio SMPP client's submit rate ({bare:,.0f} "
            "submit_sm/s, one bind, the same window)",
            f"{k['e2e_per_s'] / bare:.0%}" if bare else "—",
            f"{b['e2e_per_s'] / bare:.0%}" if bare else "—",
            _ratio(b["e2e_per_s"], k["e2e_per_s"]),
        ),
    ]
    lines = [
        f"| measurement | Kannel {version} | batgate | batgate / Kannel |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {x} | {y} | {r} |" for a, x, y, r in rows]
    lines += [
        "",
        "A ratio above 1: batgate's figure is higher (better in rows 1, 2, 5 and 6, worse in "
        "3 and 4).",
    ]
    doc = [{"what": a, "kannel": x, "batgate": y, "ratio": r} for a, x, y, r in rows]
    return "\n".join(lines), doc


def chart(k: dict[str, float], b: dict[str, float], version: str, path: Path) -> bool:
    """Five panels; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no chart (make bench-vs-kannel installs it)")
        return False
    panels = [
        ("HTTP submit, 1 msg/request (req/s, higher is better)", "submit_rps"),
        ("End to end (msg/s, higher is better)", "e2e_per_s"),
        ("CPU per message (ms, lower is better)", "cpu_ms"),
        (f"Send → final at {RATE:g} msg/s, p50 and p99 (ms)", None),
        (f"HTTP submit, {BATCH} msg/request (msg/s, higher is better)", "batch_msg_s"),
    ]
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.2))
    for ax, (title, key) in zip(axes, panels, strict=True):
        if key is None:
            labels = ["Kannel p50", "batgate p50", "Kannel p99", "batgate p99"]
            values = [k["p50_ms"], b["p50_ms"], k["p99_ms"], b["p99_ms"]]
        else:
            labels, values = ["Kannel", "batgate"], [k[key], b[key]]
        colors = ["#b0b0b0" if lab.startswith("Kannel") else "#2a7ab9" for lab in labels]
        bars = ax.bar(labels, values, color=colors)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                f"{value:,.0f}" if value >= 10 else f"{value:.2f}",
                (bar.get_x() + bar.get_width() / 2, value),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    fig.suptitle(f"batgate vs Kannel {version} — same machine, same SMSC, same load", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- main ----------------------------------------------------------------------------------------


def kannel_version() -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "kannel"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.split("-")[0] or "?"


def parse(argv: list[str] | None = None) -> tuple[Settings, Path]:
    p = argparse.ArgumentParser(description="batgate vs Kannel (docs/benchmarks.md).")
    p.add_argument("--quick", action="store_true", help="one round, shorter runs, fewer messages")
    p.add_argument("--rounds", type=int, help="rounds of (Kannel, batgate); default 2 (1)")
    p.add_argument("--seconds", type=float, help="row 1's timed wrk run; default 10 (4)")
    p.add_argument("--messages", type=int, help="row 2's messages; default 2,000 (500)")
    p.add_argument("--chart", type=Path, default=CHART, help=f"the PNG; default {CHART.name}")
    p.add_argument(
        "--split",
        action="store_true",
        help="batgate as `serve --no-workers` and `batgate worker` (default: one `serve`; "
        "on SQLite two processes contend for its one writer)",
    )
    p.add_argument(
        "--only", choices=SIDES, help="measure one side only (while working on it); no ratios"
    )
    a = p.parse_args(argv)
    return (
        Settings(
            quick=a.quick,
            rounds=a.rounds or (1 if a.quick else 2),
            seconds=a.seconds or (4 if a.quick else 10),
            warmup=1 if a.quick else 2,
            messages=a.messages or (500 if a.quick else 2_000),
            steady_seconds=5 if a.quick else 15,
            split=a.split,
            sides=(a.only,) if a.only else SIDES,
        ),
        a.chart,
    )


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["receiver"]:
        p = argparse.ArgumentParser(description="the bench's callback receiver")
        p.add_argument("--port", type=int, required=True)
        serve_receiver(p.parse_args(args[1:]).port)
        return 0
    s, chart_path = parse(args)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)  # so the `finally` below stops every child
    if pinning_available():
        os.sched_setaffinity(0, {LOAD_CPU})
    try:
        wrk.wrk_version()
        kannel._executable("bearerbox")
        kannel._executable("smsbox")
    except BenchError as exc:
        print(f"error: {exc} (make bench-vs-kannel installs it)", file=sys.stderr)
        return 2
    version = kannel_version()
    machine = report.machine()
    work = Path(tempfile.mkdtemp(prefix="batgate-vs-kannel-"))
    procs = Processes(work)
    servers = Servers(procs, work)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    bare: list[dict[str, Any]] = []
    floor: list[dict[str, Any]] = []
    started = time.monotonic()
    deployments: Deployments | None = None
    try:
        receiver = Receiver(procs)
        deployments = Deployments(procs, servers, work, receiver, split=s.split)
        for r in range(s.rounds):
            bare.append(bare_client(deployments, s))
            floor.append(http_floor(servers, s, work))
            for side in s.sides:
                log(f"round {r + 1} of {s.rounds}: {side}")
                runs[side].append(one_side(side, deployments, s, work, receiver))
    except BenchError as exc:
        print(f"error: {exc}\n{procs.complaints()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; stopping every process", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        if deployments is not None:
            deployments.stopper.finish()
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    if len(s.sides) == 1:  # --only: no table, no ratios, nothing written
        log(f"{s.sides[0]} alone, medians: {medians(runs[s.sides[0]])}")
        return 0
    k, b = medians(runs["kannel"]), medians(runs["batgate"])
    bare_rate = float(statistics.median(r["submits_per_s"] for r in bare))
    floor_ms = float(statistics.median(r["cpu_ms_per_request"] or 0 for r in floor))
    text, rows = table(k, b, s, version, bare_rate)
    drew = chart(k, b, version, chart_path)
    doc = {
        "machine": machine | {"loadavg_at_end": report.loadavg()},
        "settings": s.__dict__ | {"rate": RATE, "receipt_delay_s": RECEIPT_DELAY},
        "kannel": {
            "version": version,
            "setup": "bearerbox + smsbox, one SMPP transceiver bind, max-pending-submits "
            f"{WINDOW}, dlr-mask 31, on CPU {SERVER_CPU}",
            "medians": k,
            "runs": runs["kannel"],
            "exit_seconds_after_sigterm": deployments.stopper.seconds if deployments else [],
        },
        "batgate": {
            "setup": ("batgate serve --no-workers + batgate worker" if s.split else "batgate serve")
            + " on SQLite, one SMPP connector, 1 connection, window "
            f"{WINDOW}, a webhook, on CPU {SERVER_CPU}",
            "medians": b,
            "runs": runs["batgate"],
        },
        "bare_smpp_client": {"median_submits_per_s": bare_rate, "runs": bare},
        "http_floor": {"median_cpu_ms_per_request": floor_ms, "runs": floor},
        "table": rows,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    path = report.write_json(doc, "vs-kannel.json")
    m = machine
    print(
        f"\nbatgate vs Kannel {version} — {m['date']}, {m['cpu']} ({m['cores']} cores), commit "
        f"{(m['git_commit'] or '?')[:12]}{' (dirty)' if m['git_dirty'] else ''}; "
        f"CPUs {m['busy_before_start'] or 0:.0%} busy before the start; "
        f"medians of {s.rounds} round(s), each side in turn\n\n{text}\n\n"
        f"The floor here: one HTTP exchange through a bare ASGI app under uvicorn costs "
        f"{floor_ms:.3f} ms of CPU; a message end to end makes three (the request, two "
        f"webhooks), {3 * floor_ms:.3f} ms before any work of batgate's.\n"
    )
    log(
        f"done in {doc['total_seconds']:.0f} s; results in {path.relative_to(report.REPO)}"
        + (f", chart {_shown(chart_path)}" if drew else "")
    )
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(report.REPO))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
