"""Debian's Kannel for the bench: its configuration and how it is started.

bearerbox with one SMPP transceiver bind (`transceiver-mode = true`, `receive-port =
0`, `max-pending-submits = 100`) to the bench's SMSC, and smsbox with a `sendsms`
user; both started with `-v 2` (their log is then not copied to their output).
Used by the `kannel` phase of `make bench` (bench/via_kannel.py: batgate in front of
Kannel beside Kannel alone) and by `make bench-vs-kannel` (bench/vs_kannel.py).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from procs import LOCALHOST, BenchError, Child, Processes, free_port

USER, PASSWORD, ADMIN_PASSWORD = "bench", "bench-pw", "bench-admin"
# Seconds after each submit the SMSC sends its receipt: Kannel drops a DLR that
# overtakes its own record of the submit ("DLR … not found"), which a receipt 5 ms
# later does under load.
RECEIPT_DELAY = 0.05
FINAL_DLR_TYPES = frozenset({"1", "2", "16"})  # delivered, undelivered, SMSC reject


def kannel_conf(workdir: Path, smsc_port: int, admin: int, box: int, sendsms: int) -> str:
    return f"""
group = core
admin-port = {admin}
admin-password = {ADMIN_PASSWORD}
admin-interface = 127.0.0.1
smsbox-port = {box}
smsbox-interface = 127.0.0.1
log-file = "{workdir / "bearerbox.log"}"
log-level = 2
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = bench
host = 127.0.0.1
port = {smsc_port}
receive-port = 0
transceiver-mode = true
smsc-username = kannel
smsc-password = secret
system-type = ""
max-pending-submits = 100
reconnect-delay = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {box}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{workdir / "smsbox.log"}"
log-level = 2
http-request-retry = 3
http-queue-delay = 1

group = sendsms-user
username = {USER}
password = {PASSWORD}
max-messages = 10
concatenation = true
"""


@dataclass
class Kannel:
    bearerbox: Child
    smsbox: Child
    admin_port: int
    sendsms_url: str

    @property
    def pids(self) -> list[int]:
        return [self.bearerbox.pid, self.smsbox.pid]

    def status(self) -> str:
        url = f"http://{LOCALHOST}:{self.admin_port}/status.txt?password={ADMIN_PASSWORD}"
        try:
            return httpx.get(url, timeout=2).text
        except httpx.TransportError as exc:
            return f"no status: {exc!r}"


def _executable(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise BenchError(f"Kannel's {name} is not installed: `make bench` installs it")
    return found


def _wait(ready: Any, children: list[Child], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        for child in children:
            if child.proc.poll() is not None:
                raise BenchError(f"Kannel's {child.name} exited:\n{child.log_tail()}")
        time.sleep(0.1)
    raise BenchError(f"kannel: {what} not within {timeout} s")


def start_kannel(
    procs: Processes, workdir: Path, smsc_port: int, cpu: int | None = None, tag: str = ""
) -> Kannel:
    """bearerbox bound to the SMSC, then smsbox connected to it, on `cpu` (None: not
    pinned); their logs are named bearerbox{tag} and smsbox{tag}. If either fails to
    come up, both are killed."""
    admin, box, sendsms = free_port(), free_port(), free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "kannel.conf"
    conf.write_text(kannel_conf(workdir, smsc_port, admin, box, sendsms))
    env = {"PATH": "/usr/sbin:/usr/bin:/bin"}
    # -v 2: only warnings on its own output (the log file has the same).
    argv = [_executable("bearerbox"), "-v", "2", str(conf)]
    bearer = procs.start(f"bearerbox{tag}", argv, env, cpu)
    smsbox: Child | None = None
    try:
        started = Kannel(bearer, bearer, admin, f"http://{LOCALHOST}:{sendsms}/cgi-bin/sendsms")
        _wait(lambda: "(online" in started.status(), [bearer], "bearerbox bound to the SMSC")
        argv = [_executable("smsbox"), "-v", "2", str(conf)]
        smsbox = procs.start(f"smsbox{tag}", argv, env, cpu)
        started = Kannel(bearer, smsbox, admin, started.sendsms_url)
        _wait(lambda: "smsbox:" in started.status(), [bearer, smsbox], "smsbox connected")
        return started
    except BaseException:
        _kill(procs, smsbox, bearer)
        raise


def _kill(procs: Processes, *children: Child | None) -> None:
    for child in children:
        if child is not None:
            child.proc.kill()
            procs.stop(child)
