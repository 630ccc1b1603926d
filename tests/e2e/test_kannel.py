"""batgate → Kannel → SMPP → an SMSC, and back: `batgate serve --config` with a
`kind = "http"`, `preset = "kannel"` connector hands SMS to Debian's Kannel (bearerbox
and smsbox, with a configuration this module writes), which submits them over SMPP to
the test SMSC (tests/peers/smsc34.py); the SMSC's receipts come back through Kannel's
`dlr-url` to `/callbacks/kannel` and become the messages' statuses, on both databases.

One Kannel (and one SMSC) per module. Kannel is installed by `make test` (Makefile);
without it these tests fail saying so rather than being skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from peers_support import Peer, control, free_port, start_peer, stop_peer

from databases import Databases
from smpp_support import UCS2, Part, reassemble
from waiting import wait_for

if TYPE_CHECKING:
    from conftest import Account, Server

pytestmark = pytest.mark.e2e

KANNEL_USER, KANNEL_PASSWORD = "batgate", "kannel-pw"
ADMIN_PASSWORD = "kannel-admin"
UCS_LONG = "Ваше замовлення №1001 готове — дякуємо, що обрали нас! " * 2  # 2 UCS-2 parts
_serial = itertools.count(100)


def kannel_conf(workdir: Path, smsc_port: int, admin: int, box: int, sendsms: int) -> str:
    """bearerbox and smsbox for one SMSC over SMPP (one transceiver bind), the sendsms
    interface for batgate, and DLRs fetched again when batgate cannot store them."""
    return f"""
group = core
admin-port = {admin}
admin-password = {ADMIN_PASSWORD}
admin-interface = 127.0.0.1
smsbox-port = {box}
smsbox-interface = 127.0.0.1
log-file = "{workdir / "bearerbox.log"}"
log-level = 0
access-log = "{workdir / "access.log"}"
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = smsc34
host = 127.0.0.1
port = {smsc_port}
receive-port = 0
transceiver-mode = true
smsc-username = kannel
smsc-password = secret
system-type = ""
reconnect-delay = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {box}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{workdir / "smsbox.log"}"
log-level = 0
http-request-retry = 3
http-queue-delay = 1

group = sendsms-user
username = {KANNEL_USER}
password = {KANNEL_PASSWORD}
max-messages = 10
concatenation = true
"""


def batgate_toml(sendsms_url: str) -> str:
    return f"""
[connectors.kannel]
kind = "http"
preset = "kannel"
url = "{sendsms_url}"
username = "{KANNEL_USER}"
password = "{KANNEL_PASSWORD}"

[routes]
sms = "kannel"
"""


@dataclass
class Kannel:
    workdir: Path
    admin_port: int
    sendsms_url: str
    processes: list[subprocess.Popen[bytes]]

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}:\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.workdir.glob("*.log*"))
        )

    def status(self) -> str:
        url = f"http://127.0.0.1:{self.admin_port}/status.txt?password={ADMIN_PASSWORD}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return str(answer.read().decode())
        except OSError as exc:
            return f"no status: {exc!r}"

    def serving(self) -> bool:
        """smsbox is connected to bearerbox and its sendsms interface answers."""
        if "smsbox:" not in self.status():
            return False
        try:
            urllib.request.urlopen(self.sendsms_url, timeout=2).close()
        except urllib.error.HTTPError:
            return True  # no credentials: refused, so it listens
        except OSError:
            return False
        return True

    def exited(self) -> bool:
        return any(p.poll() is not None for p in self.processes)

    def start(self, program: str, conf: Path, ready: Callable[[], bool], what: str) -> None:
        with (self.workdir / f"{Path(program).name}.out.log").open("wb") as out:
            # -v 2: only warnings on its own output; the log file has the rest.
            command = [program, "-v", "2", str(conf)]
            self.processes.append(subprocess.Popen(command, stdout=out, stderr=out))
        wait_for(lambda: ready() or self.exited(), what, timeout=20)
        if self.exited():
            raise AssertionError(f"Kannel did not start:\n{self.logs()}")

    def stop(self) -> None:
        # bearerbox may take 40 s to stop on SIGTERM: nothing of it needs to survive.
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


def executable(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.fail(
            f"Kannel's {name} is not installed: `make test` installs it (apt-get install kannel)"
        )
    return found


def start_kannel(workdir: Path, smsc: Peer) -> Kannel:
    bearerbox, smsbox = executable("bearerbox"), executable("smsbox")
    admin, box, sendsms = free_port(), free_port(), free_port()
    conf = workdir / "kannel.conf"
    conf.write_text(kannel_conf(workdir, smsc.port, admin, box, sendsms))
    kannel = Kannel(workdir, admin, f"http://127.0.0.1:{sendsms}/cgi-bin/sendsms", [])
    try:
        kannel.start(bearerbox, conf, lambda: "(online" in kannel.status(), "bearerbox bound")
        kannel.start(smsbox, conf, kannel.serving, "smsbox connected, sendsms answering")
    except BaseException:
        kannel.stop()
        raise
    return kannel


@pytest.fixture(scope="module")
def smsc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    peer = start_peer("smsc34.py", [], tmp_path_factory.mktemp("smsc34"))
    try:
        yield peer
    finally:
        assert stop_peer(peer) == 0, peer.log()


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory, smsc: Peer) -> Iterator[Kannel]:
    started = start_kannel(tmp_path_factory.mktemp("kannel"), smsc)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def kannel_server(
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    databases: Databases,
    kannel: Kannel,
    start_module_server: Callable[..., Server],
) -> Server:
    """`batgate serve` with its SMS routed to Kannel; its callbacks' base is its own address."""
    workdir = tmp_path_factory.mktemp(f"kannel-batgate-{backend}")
    config = workdir / "batgate.toml"
    config.write_text(batgate_toml(kannel.sendsms_url))
    settings = {
        "BATGATE_CONFIG": str(config),
        "BATGATE_DISPATCHER__POLL_INTERVAL": "0.05",
        "BATGATE_RATE_LIMIT__ENABLED": "false",
        "BATGATE_DATABASE_POOL_SIZE": "3",  # beside other modules on one PostgreSQL server
    }
    return start_module_server(workdir, settings, databases.url(backend, workdir))


@pytest.fixture(scope="module")
def account(kannel_server: Server) -> Account:
    return kannel_server.create_account("kannel")


def number(ending: str) -> str:
    return f"+38050{next(_serial):03d}{ending}"


def smsc_parts(smsc: Peer, to: str) -> list[dict[str, Any]]:
    found = asyncio.run(control(smsc, "GET", "/stats?messages=1"))
    return [m for m in found["messages"] if m["destination"] == to.removeprefix("+")]


# (id, destination ending, text, final status, submits the SMSC sees)
CASES = [
    ("delivered", "4567", "Order #1001 confirmed: {pick-up} at 12:00 €", "delivered", 1),
    ("UNDELIV receipt: Kannel's DLR 2", "0001", "Order #1002", "undeliverable", 1),
    ("refused by the SMSC: Kannel's DLR 16", "0003", "Order #1003", "undeliverable", 1),
    ("long UCS-2, split by Kannel", "4567", UCS_LONG, "delivered", 2),
]


def test_receipts_come_back_through_kannels_dlr_url(
    kannel_server: Server, account: Account, smsc: Peer, kannel: Kannel
) -> None:
    server = kannel_server
    sent = [(number(ending), text) for _, ending, text, _, _ in CASES]
    answer = server.send(
        account, [{"type": "sms", "from": "MyShop", "to": to, "text": text} for to, text in sent]
    )
    ids = [m["messageId"] for m in answer["messages"]]
    traces = server.wait_all(account, ids, timeout=30)
    assert [traces[i].final["deliverystatus"] for i in ids] == [c[3] for c in CASES], kannel.logs()
    for (to, _), (_, _, _, _, submits) in zip(sent, CASES, strict=True):
        parts = smsc_parts(smsc, to)
        assert len(parts) == submits, parts
        assert all(p["source"] == "MyShop" for p in parts)
    long_parts = smsc_parts(smsc, sent[3][0])
    assert {p["dataCoding"] for p in long_parts} == {UCS2}
    pieces = [
        reassemble([Part(bytes.fromhex(p["shortMessage"]), p["esmClass"], {})], UCS2, False)
        for p in long_parts
    ]
    # The SMSC may record the parts in any order: their UDH numbers them.
    text = "".join(piece for piece, numbering in sorted(pieces, key=lambda p: p[1][0][2]))
    assert text == UCS_LONG
    (short,) = smsc_parts(smsc, sent[0][0])
    assert (
        bytes.fromhex(short["shortMessage"])
        == b"Order #1001 confirmed: \x1b(pick-up\x1b) at 12:00 \x1be"
    )


def test_a_callback_without_its_token_is_refused(kannel_server: Server, account: Account) -> None:
    server = kannel_server
    entry = server.send_one(
        account, {"type": "sms", "from": "MyShop", "to": number("4567"), "text": "Hi"}
    )
    server.wait_final(account, entry["messageId"], timeout=30)
    ref = f"{entry['messageId']}.0"
    for query in (f"ref={ref}&type=2", f"ref={ref}&token={'0' * 32}&type=2", "type=2"):
        answer = httpx.get(f"{server.base_url}/callbacks/kannel?{query}", timeout=10)
        server.assert_error(answer, 401, "UNAUTHORIZED")
    assert server.status(account, entry["messageId"])["deliverystatus"] == "delivered"
    assert "token=" not in server.log.read_text()  # no token in batgate's own log
