"""(h) kannel: batgate in front of Kannel (`kind = "http"`, `preset = "kannel"`), beside
Kannel alone, both to the same kind of SMSC, under the same load (issue 17: batgate
should add less than 20 % to Kannel's cost).

Each measurement gets a fresh SMSC (tests/peers/smsc34.py, a DELIVRD receipt 50 ms
after each submit), a fresh Kannel (Debian's bearerbox + smsbox, bench/kannel.py's
configuration) and — through batgate — a fresh `batgate serve` on SQLite whose SMS go
to that Kannel's `sendsms`. The load is `make bench-vs-kannel`'s row 2 (bench/vs_kannel.py):
N messages, one per request, each sent exactly once by wrk as fast as 32 connections
go, done when the receiver process has every final callback — Kannel's DLR (asked
with `dlr-mask=19`, finals only, as batgate's preset asks) for Kannel alone, batgate's
webhook through batgate (Kannel's DLRs then go to batgate's `/callbacks/kannel`).

Cost is CPU per message of every process of the gateway (bearerbox + smsbox; with
batgate, `batgate serve` too), from /proc; batgate's added cost is the ratio of the
two, less one. Kannel and batgate share CPU 1, the load has CPU 0. Alone and through
batgate alternate (two rounds; one with `--quick`); medians.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kannel
from procs import log
from report import Row
from servers import SERVER_CPU, Servers
from vs_kannel import (
    BatgateGateway,
    Deployments,
    KannelGateway,
    Receiver,
    Settings,
    _cli,
    end_to_end,
)

MAX_ADDED = 0.20  # of Kannel's CPU per message


class ViaKannel(BatgateGateway):
    """batgate in front of Kannel: its requests, the CPU of all three processes."""

    side = "batgate → Kannel"

    def __init__(self, url: str, pid: int, key: str, kannel_pids: list[int]) -> None:
        super().__init__(url, pid, key)
        self.kannel_pids = kannel_pids

    def pids(self) -> list[int]:
        return [self.pid, *self.kannel_pids]


def batgate_toml(sendsms_url: str) -> str:
    return (
        f'[connectors.kannel]\nkind = "http"\npreset = "kannel"\nurl = "{sendsms_url}"\n'
        f'username = "{kannel.USER}"\npassword = "{kannel.PASSWORD}"\n\n'
        '[routes]\nsms = "kannel"\n'
    )


@contextmanager
def kannel_alone(d: Deployments, n: int) -> Iterator[KannelGateway]:
    with d.smsc() as port:
        found = kannel.start_kannel(d.procs, d.work / f"alone-{n}", port, SERVER_CPU, f"-a{n}")
        try:
            yield KannelGateway(found, d.receiver, dlr_mask="19")
        finally:
            d.stopper.terminate(found.smsbox, found.bearerbox)


@contextmanager
def via_kannel(d: Deployments, n: int) -> Iterator[ViaKannel]:
    with d.smsc() as port:
        found = kannel.start_kannel(d.procs, d.work / f"via-{n}", port, SERVER_CPU, f"-v{n}")
        try:
            db, key = d.servers.new_db(f"via-kannel-{n}")
            _cli(db, "accounts", "set-webhook", "bench", f"{d.receiver.url}/hook")
            config = db.with_suffix(".toml")
            config.write_text(batgate_toml(found.sendsms_url))
            env = {"BATGATE_CONFIG": str(config)}
            with d.servers.batgate(f"via-kannel-{n}", db, workers=True, env=env) as server:
                yield ViaKannel(server.url, server.child.pid, key, found.pids)
        finally:
            d.stopper.terminate(found.smsbox, found.bearerbox)


def run(servers: Servers, quick: bool, work: Path) -> tuple[dict[str, Any], list[Row]]:
    work.mkdir(parents=True, exist_ok=True)
    s = Settings(
        quick=quick,
        rounds=1 if quick else 2,
        seconds=0,
        warmup=0,
        messages=500 if quick else 2_000,
        steady_seconds=0,
    )
    receiver = Receiver(servers.procs)
    d = Deployments(servers.procs, servers, work, receiver)
    alone: list[dict[str, Any]] = []
    via: list[dict[str, Any]] = []
    try:
        for n in range(s.rounds):
            with kannel_alone(d, n) as k:
                alone.append(end_to_end(k, s, work, receiver))
            with via_kannel(d, n) as b:
                via.append(end_to_end(b, s, work, receiver))
    finally:
        d.stopper.finish()
        servers.procs.stop(receiver.child)
    return _judged(s, alone, via)


def _judged(
    s: Settings, alone: list[dict[str, Any]], via: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[Row]]:
    def median(runs: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    cost_alone, cost_via = median(alone, "cpu_ms_per_message"), median(via, "cpu_ms_per_message")
    rate_alone, rate_via = median(alone, "messages_per_s"), median(via, "messages_per_s")
    added = cost_via / cost_alone - 1
    doc = {
        "messages": s.messages,
        "rounds": s.rounds,
        "kannel_alone": alone,
        "through_batgate": via,
        "cpu_ms_per_message": {"kannel_alone": cost_alone, "through_batgate": cost_via},
        "messages_per_s": {"kannel_alone": rate_alone, "through_batgate": rate_via},
        "added_cost": round(added, 3),
        "ok": added < MAX_ADDED,
    }
    log(f"kannel: CPU per message {cost_via:.3f} ms through batgate, {cost_alone:.3f} alone")
    rows = [
        Row(
            f"kannel: {s.messages:,} SMS, batgate → Kannel → SMPP vs Kannel's sendsms alone "
            "(wrk, 1 per request): CPU per message, all the gateway's processes",
            f"{cost_via:.3f} vs {cost_alone:.3f} ms (+{added:.0%})",
            target=f"< +{MAX_ADDED:.0%}",
            ok=added < MAX_ADDED,
        ),
        Row(
            "kannel: the same runs, messages/s to the last final callback",
            f"{rate_via:,.0f} vs {rate_alone:,.0f} msg/s ({rate_via / rate_alone:.0%})",
        ),
    ]
    return doc, rows
