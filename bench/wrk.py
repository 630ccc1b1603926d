"""Running wrk: a warm-up, then timed runs; each run's summary comes back as JSON.

The Lua scripts in bench/lua/ end with `report.lua`'s `done`, which prints one
line `BENCH_JSON {...}` with the request count, errors and latency percentiles.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cpu import Watch
from procs import BenchError, pinned

LUA_DIR = Path(__file__).resolve().parent / "lua"
WRK_CPU = 0
_MARKER = "BENCH_JSON "


def wrk_version() -> str:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)")
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else "wrk"


def build_script(name: str, out_dir: Path) -> Path:
    """bench/lua/NAME.lua followed by the shared targets.lua and report.lua, as one file."""
    parts = (f"{name}.lua", "targets.lua", "report.lua")
    text = "\n".join((LUA_DIR / part).read_text() for part in parts)
    path = out_dir / f"{name}.lua"
    path.write_text(text)
    return path


@dataclass(frozen=True)
class Load:
    """One wrk workload: which script against which URL, with what arguments.

    With `ports`, wrk's threads go to these ports of the URL's host in turn
    (targets.lua), so one wrk spreads its connections over several servers and
    reports one latency histogram for all of them. `watch`: the processes whose
    CPU use each run records.
    """

    url: str
    script: Path
    args: Sequence[str]
    connections: int
    timeout_s: int = 10
    threads: int = 1
    ports: tuple[int, ...] = ()
    watch: Watch | None = None


@dataclass
class Run:
    requests: int
    seconds: float
    errors: dict[str, int]
    latency_us: dict[str, float]
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def failures(self) -> int:
        return sum(self.errors.values())


@dataclass
class Measurement:
    """Medians over the timed runs (each figure's median on its own), the spread, the runs."""

    rps: float
    rps_min: float
    rps_max: float
    p50_ms: float
    p99_ms: float
    runs: list[dict[str, Any]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # medians, in cores (cpu.py)

    @classmethod
    def of(cls, done: Sequence[Run]) -> Measurement:
        return cls(
            rps=statistics.median(r.rps for r in done),
            rps_min=min(r.rps for r in done),
            rps_max=max(r.rps for r in done),
            p50_ms=statistics.median(r.latency_us["p50"] for r in done) / 1000,
            p99_ms=statistics.median(r.latency_us["p99"] for r in done) / 1000,
            runs=[_run_json(r) for r in done],
            cpu=_median_cpu(done),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _median_cpu(done: Sequence[Run]) -> dict[str, float]:
    keys = set.intersection(*(set(r.cpu) for r in done)) if done else set()
    return {k: round(statistics.median(r.cpu[k] for r in done), 3) for k in sorted(keys)}


def _run_json(r: Run) -> dict[str, Any]:
    doc: dict[str, Any] = {"rps": round(r.rps, 1), "requests": r.requests}
    doc["seconds"] = round(r.seconds, 3)
    doc.update({f"{k}_ms": round(v / 1000, 3) for k, v in r.latency_us.items() if k != "stdev"})
    if r.cpu:
        doc["cpu"] = r.cpu
    return doc


def run_once(load: Load, seconds: float) -> Run:
    argv = [
        "wrk",
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={load.timeout_s}s",
        "-s",
        str(load.script),
        load.url,
        "--",
        *load.args,
    ]
    env = os.environ | {"BENCH_PORTS": ",".join(map(str, load.ports))}
    before = load.watch.start() if load.watch is not None else None
    try:
        out = subprocess.run(
            pinned(argv, WRK_CPU),
            capture_output=True,
            text=True,
            timeout=seconds + load.timeout_s + 30,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {' '.join(argv)}") from exc
    cpu = load.watch.stop(before) if load.watch is not None and before is not None else {}
    for line in out.stdout.splitlines():
        if line.startswith(_MARKER):
            doc = json.loads(line[len(_MARKER) :])
            return Run(
                requests=int(doc["requests"]),
                seconds=doc["duration_us"] / 1e6,
                errors={k: int(v) for k, v in doc["errors"].items()},
                latency_us={k: float(v) for k, v in doc["latency_us"].items()},
                cpu=cpu,
            )
    raise BenchError(f"wrk gave no summary (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")


def _checked(run: Run, load: Load) -> Run:
    if run.failures:
        raise BenchError(f"{run.failures} failed requests ({run.errors}) against {load.url}")
    return run


def measure(load: Load, *, warmup: float, seconds: float, runs: int) -> Measurement:
    """A warm-up run (discarded), then `runs` timed runs; any failed request fails it."""
    return measure_interleaved({"only": load}, warmup=warmup, seconds=seconds, runs=runs)["only"]


def measure_interleaved(
    loads: Mapping[str, Load], *, warmup: float, seconds: float, runs: int
) -> dict[str, Measurement]:
    """Like `measure` for several loads, run in rounds (one run of each per round).

    Neighbours on a shared host slow a machine down for minutes at a time; in
    rounds, the loads being compared see the same conditions.
    """
    if warmup > 0:
        for load in loads.values():
            run_once(load, warmup)
    done: dict[str, list[Run]] = {name: [] for name in loads}
    for _ in range(runs):
        for name, load in loads.items():
            done[name].append(_checked(run_once(load, seconds), load))
    return {name: Measurement.of(r) for name, r in done.items()}
