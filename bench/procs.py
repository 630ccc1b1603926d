"""The processes the bench starts: pinned to a core, logged to a file, always stopped.

Each child gets its own session (process group), so a Ctrl-C in the terminal
reaches only the bench, whose `finally` blocks then stop the children by id:
SIGTERM, and SIGKILL for what has not exited after a grace period.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

LOCALHOST = "127.0.0.1"
_GRACE_SECONDS = 10.0


class BenchError(Exception):
    """A step of the bench failed; the message says which and why."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pinning_available() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(argv: Sequence[str], cpu: int | None) -> list[str]:
    """`argv` run on one CPU via taskset (which execs it: the pid stays the program's)."""
    if cpu is None or not pinning_available():
        return list(argv)
    return ["taskset", "-c", str(cpu), *argv]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        port: int = s.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """VmRSS of a live process, in KiB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        self.log_file.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class Processes:
    """Starts children and stops them; `stop_all` in a `finally` leaves none behind."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._children: list[Child] = []

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cpu: int | None
    ) -> Child:
        log_path = self._log_dir / f"{name}.log"
        log_file = log_path.open("wb")
        proc = subprocess.Popen(
            pinned(argv, cpu),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Child(name, proc, log_path, log_file)
        self._children.append(child)
        return child

    def stop(self, child: Child) -> None:
        if child.proc.poll() is None:
            self._signal(child, signal.SIGTERM)
            try:
                child.proc.wait(_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self._signal(child, signal.SIGKILL)
                child.proc.wait(_GRACE_SECONDS)
        child.log_file.close()
        if child in self._children:
            self._children.remove(child)

    def complaints(self, lines: int = 12) -> str:
        """The last lines of each running child's log that reported an error."""
        out = []
        for child in self._children:
            tail = child.log_tail(400)
            marks = [i for i, line in enumerate(tail.splitlines()) if "ERROR" in line]
            if marks:
                text = tail.splitlines()[marks[-1] : marks[-1] + lines]
                out.append(f"--- {child.name} (pid {child.pid}):\n" + "\n".join(text))
        return "\n".join(out)

    def stop_all(self) -> None:
        for child in list(reversed(self._children)):
            with suppress(Exception):
                self.stop(child)

    @staticmethod
    def _signal(child: Child, sig: signal.Signals) -> None:
        # The child leads its own process group (start_new_session): signal the group,
        # by its id, so anything it started goes too.
        with suppress(ProcessLookupError):
            os.killpg(child.pid, sig)


def wait_ready(child: Child, url: str, timeout: float = 60.0) -> None:
    """Poll `url` until it answers 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    attempts = int(timeout / 0.1) + 1
    with httpx.Client(timeout=2.0) as client:
        for _ in range(attempts):
            if child.proc.poll() is not None:
                raise BenchError(f"{child.name} exited early:\n{child.log_tail()}")
            with suppress(httpx.TransportError):
                if client.get(url).status_code == 200:
                    return
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    raise BenchError(f"{child.name} did not answer {url} in {timeout:.0f} s:\n{child.log_tail()}")
