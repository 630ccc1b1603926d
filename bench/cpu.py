"""Where the CPU went during a timed run: the API processes, PostgreSQL, wrk, each core.

Read from /proc before and after the run: utime + stime of each process
(/proc/PID/stat), each core's busy and total ticks (/proc/stat), and wrk's own
time as the bench's reaped children (getrusage). Figures are in cores: 1.0 is one
core kept busy for the whole run. PostgreSQL's backends are told apart by their
process title, which names the database they serve.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_ticks(pid: int) -> int | None:
    """utime + stime of a process, in clock ticks; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return int(fields[11]) + int(fields[12])


def core_ticks() -> dict[str, tuple[int, int, int]]:
    """(busy, total, interrupts) ticks of each core, from /proc/stat; interrupts
    (irq + softirq: e.g. loopback networking) belong to no process."""
    cores: dict[str, tuple[int, int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        ticks = [int(v) for v in values[:8]]
        idle = ticks[3] + ticks[4]  # idle + iowait
        cores[name] = (sum(ticks) - idle, sum(ticks), ticks[5] + ticks[6])
    return cores


def _postgres_processes() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, title, stat fields after the name) of each PostgreSQL process; processes
    that exit while they are read are skipped."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        yield int(entry.name), title, fields


def postgres_processes(marker: str) -> tuple[list[int], list[int]]:
    """PostgreSQL's processes: (backends whose title contains `marker`, all the others)."""
    ours: list[int] = []
    others: list[int] = []
    for pid, title, _ in _postgres_processes():
        (ours if marker in title else others).append(pid)
    return ours, others


def postmaster_reaped_ticks() -> int:
    """CPU ticks of PostgreSQL's exited backends (all databases): the postmaster's
    cutime + cstime, which grow when it reaps a child. (Children's titles start with
    "postgres:"; the postmaster's is its command line.)"""
    return sum(
        int(fields[13]) + int(fields[14])
        for _, title, fields in _postgres_processes()
        if not title.startswith("postgres:")
    )


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Snapshot:
    at: float
    ticks: dict[str, dict[int, int]]
    cores: dict[str, tuple[int, int, int]]
    children_s: float
    reaped: int
    counters: dict[str, float]


@dataclass(frozen=True)
class Watch:
    """What to account for during a run: the API processes under load, and (with a
    `postgres_marker`) PostgreSQL's processes, ours and the rest. `counters`: other
    figures read before and after (e.g. PostgreSQL's session count), reported per
    second."""

    api: Sequence[int]
    postgres_marker: str | None = None
    extra: dict[str, Sequence[int]] = field(default_factory=dict)
    counters: Callable[[], dict[str, float]] | None = None

    def _groups(self) -> dict[str, list[int]]:
        groups = {"api": list(self.api)} | {k: list(v) for k, v in self.extra.items()}
        if self.postgres_marker is not None:
            ours, others = postgres_processes(self.postgres_marker)
            groups["postgres"] = ours
            groups["postgres_other"] = others
        return groups

    def start(self) -> Snapshot:
        ticks = {
            name: {pid: t for pid in pids if (t := process_ticks(pid)) is not None}
            for name, pids in self._groups().items()
        }
        reaped = postmaster_reaped_ticks() if self.postgres_marker is not None else 0
        counters = self.counters() if self.counters is not None else {}
        return Snapshot(
            time.monotonic(), ticks, core_ticks(), _children_seconds(), reaped, counters
        )

    def stop(self, before: Snapshot) -> dict[str, float]:
        """Cores used by each group since `before`; `wrk` is the reaped children (the
        wrk run); `core0`, `core1`, … each core's busy share; `other` what the machine
        did besides the groups, wrk and interrupts (other programs)."""
        seconds = max(1e-6, time.monotonic() - before.at)
        out: dict[str, float] = {}
        for name, pids in self._groups().items():
            start = before.ticks.get(name, {})
            used = 0
            for pid in pids:
                now = process_ticks(pid)
                if now is not None:
                    used += now - start.get(pid, 0)  # a process new since the start: its life
                    if name == "api" and len(pids) > 1:  # each API process on its own too
                        out[f"api_{pid}"] = (now - start.get(pid, 0)) / _TICKS_PER_S / seconds
            out[name] = used / _TICKS_PER_S / seconds
        out["wrk"] = (_children_seconds() - before.children_s) / seconds
        if self.postgres_marker is not None:
            # Backends that exited during the run (connections closed), any database's.
            reaped = postmaster_reaped_ticks() - before.reaped
            out["postgres_exited"] = reaped / _TICKS_PER_S / seconds
        if self.counters is not None:
            for key, value in self.counters().items():
                out[f"{key}_per_s"] = (value - before.counters.get(key, value)) / seconds
        busy_total = irq_total = 0.0
        for core, (busy, total, irq) in core_ticks().items():
            busy0, total0, irq0 = before.cores.get(core, (busy, total, irq))
            share = (busy - busy0) / max(1, total - total0)
            out[core.replace("cpu", "core")] = share
            busy_total += share
            irq_total += (irq - irq0) / max(1, total - total0)
        out["machine"] = busy_total
        out["interrupts"] = irq_total
        out["other"] = max(0.0, busy_total - sum(v for k, v in out.items() if k in self._known()))
        return {k: round(v, 3) for k, v in out.items()}

    def _known(self) -> set[str]:
        known = {"api", "postgres", "postgres_other", "postgres_exited", "wrk", "interrupts"}
        return known | set(self.extra)
