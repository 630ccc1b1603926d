"""batgate → Kannel → SMPP → an SMSC, and back: `batgate serve --config` with a
`kind = "http"`, `preset = "kannel"` connector hands SMS to Debian's Kannel (bearerbox
and smsbox, with a configuration this module writes), which submits them over SMPP to
the test SMSC (tests/peers/smsc34.py); the SMSC's receipts come back through Kannel's
`dlr-url` to `/callbacks/kannel` and become the messages' statuses, on both databases.

The other way too: the SMSC sends messages from phones (deliver_sm, GSM-7, Latin-1,
UCS-2, in parts), Kannel's bearerbox joins the parts and its smsbox `sms-service`
calls the get-url docs/http-carriers.md gives; each message reaches the account that
owns its number (`GET /bat/inbound`, its signed webhook), or is kept unrouted.

One SMSC per module, one Kannel per database backend (its sms-service calls that
backend's batgate). Kannel is installed by `make test` (Makefile); without it these
tests fail saying so rather than being skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
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

from batgate.webhooks import verify
from databases import Databases
from smpp_support import UCS2, Part, reassemble
from waiting import wait_for

if TYPE_CHECKING:
    from conftest import Account, Hook, Receiver, Server

pytestmark = pytest.mark.e2e

KANNEL_USER, KANNEL_PASSWORD = "batgate", "kannel-pw"
ADMIN_PASSWORD = "kannel-admin"
CALLBACK_TOKEN = "kannelMoToken0123456789"  # letters and digits: no % for Kannel to read
UCS_LONG = "Ваше замовлення №1001 готове — дякуємо, що обрали нас! " * 2  # 2 UCS-2 parts
_serial = itertools.count(100)
JOIN_TIMEOUT = 2  # seconds bearerbox waits for a message's missing parts (default 1800)
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "http-carriers.md"


@dataclass(frozen=True)
class Ports:
    """Where one Kannel listens: chosen before batgate starts (its connector sends to
    the sendsms port), used when Kannel starts (its get-url names batgate's port)."""

    admin: int
    box: int
    sendsms: int

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms}/cgi-bin/sendsms"


def sms_service(batgate_url: str) -> str:
    """The `sms-service` group of docs/http-carriers.md, as written there, with batgate's
    address and this module's token in its get-url."""
    blocks = [b.split("```", 1)[0] for b in GUIDE.read_text().split("```ini\n")[1:]]
    (block,) = [b for b in blocks if b.startswith("group = sms-service")]
    token = re.search(r"[?&]token=([^&]+)", block)
    assert token is not None and "http://127.0.0.1:8000/callbacks/kannel?" in block, block
    return "\n" + block.replace("http://127.0.0.1:8000", batgate_url).replace(
        token.group(1), CALLBACK_TOKEN
    )


def kannel_conf(workdir: Path, smsc_port: int, ports: Ports, batgate_url: str) -> str:
    """bearerbox and smsbox for one SMSC over SMPP (one transceiver bind), the sendsms
    interface for batgate, DLRs fetched again when batgate cannot store them, and the
    sms-service that hands messages from phones to batgate."""
    admin, box, sendsms = ports.admin, ports.box, ports.sendsms
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
sms-combine-concatenated-mo-timeout = {JOIN_TIMEOUT}

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
{sms_service(batgate_url)}"""


def batgate_toml(sendsms_url: str) -> str:
    return f"""
[connectors.kannel]
kind = "http"
preset = "kannel"
url = "{sendsms_url}"
username = "{KANNEL_USER}"
password = "{KANNEL_PASSWORD}"
callback_token = "{CALLBACK_TOKEN}"

[connectors.kannel.inbound]

[routes]
sms = "kannel"
"""


@dataclass
class Kannel:
    workdir: Path
    admin_port: int
    sendsms_url: str
    processes: list[subprocess.Popen[bytes]]
    smsc: Peer

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


def start_kannel(workdir: Path, smsc: Peer, ports: Ports, batgate_url: str) -> Kannel:
    bearerbox, smsbox = executable("bearerbox"), executable("smsbox")
    conf = workdir / "kannel.conf"
    conf.write_text(kannel_conf(workdir, smsc.port, ports, batgate_url))
    kannel = Kannel(workdir, ports.admin, ports.sendsms_url, [], smsc)
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
def kannel_ports(backend: str) -> Ports:
    """One Kannel per backend (this fixture changes with it): its sms-service calls the
    batgate of that backend."""
    return Ports(free_port(), free_port(), free_port())


@pytest.fixture(scope="module")
def kannel_server(
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    databases: Databases,
    kannel_ports: Ports,
    start_module_server: Callable[..., Server],
) -> Server:
    """`batgate serve` with its SMS routed to Kannel; its callbacks' base is its own
    address; webhooks go out at once."""
    workdir = tmp_path_factory.mktemp(f"kannel-batgate-{backend}")
    config = workdir / "batgate.toml"
    config.write_text(batgate_toml(kannel_ports.sendsms_url))
    settings = {
        "BATGATE_CONFIG": str(config),
        "BATGATE_DISPATCHER__POLL_INTERVAL": "0.05",
        "BATGATE_RATE_LIMIT__ENABLED": "false",
        "BATGATE_DATABASE_POOL_SIZE": "3",  # beside other modules on one PostgreSQL server
        "BATGATE_WEBHOOKS__POLL_INTERVAL": "0.05",
        "BATGATE_WEBHOOKS__RETRY_DELAYS": "[0.2,0.2]",
    }
    return start_module_server(workdir, settings, databases.url(backend, workdir))


@pytest.fixture(scope="module")
def kannel(
    tmp_path_factory: pytest.TempPathFactory,
    smsc: Peer,
    kannel_ports: Ports,
    kannel_server: Server,
) -> Iterator[Kannel]:
    workdir = tmp_path_factory.mktemp("kannel")
    started = start_kannel(workdir, smsc, kannel_ports, kannel_server.base_url)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def account(kannel_server: Server, kannel: Kannel) -> Account:
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


def test_a_callback_without_its_token_is_refused(
    kannel_server: Server, account: Account, kannel: Kannel
) -> None:
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


# -- messages from phones: the SMSC → Kannel → its sms-service's get-url → batgate --------

OURS = "+380441230000"  # the number the account owns
PHONE = "+380671234567"
UKRAINIAN = "Так, підтверджую замовлення №1001 — дякую!"
LONG = "Please call me back about order 1001, the one with the blue box. " * 3

# (id, what the SMSC sends (smsc34's POST /mo): its text must arrive as it is, its parts)
MO_CASES = [
    ("GSM-7", {"text": "Yes, please {€} @ 12:00", "coding": "gsm7"}, 1),
    ("Latin-1", {"text": "Très bien, merci «ça marche»", "coding": "latin1"}, 1),
    ("UCS-2", {"text": UKRAINIAN, "coding": "ucs2"}, 1),
    ("GSM-7 in two parts (UDH), joined by bearerbox", {"text": LONG, "split": "udh"}, 2),
    (
        "UCS-2 in two parts (16-bit UDH), joined by bearerbox",
        {"text": UKRAINIAN * 3, "coding": "ucs2", "split": "udh16"},
        2,
    ),
]


def mo(kannel: Kannel, **fields: Any) -> int:
    """Have the SMSC send a message from a phone to Kannel's bind; how many parts."""
    body = {"from": PHONE, "to": OURS, "coding": "gsm7", "split": None, **fields}
    answer = httpx.post(f"http://127.0.0.1:{kannel.smsc.control_port}/mo", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["sent"])


def inbound_hooks(receiver: Receiver, count: int, kannel: Kannel) -> list[Hook]:
    def inbound(hooks: list[Hook]) -> list[Hook]:
        return [h for h in hooks if h.webhook_id.startswith("in_")]

    try:
        hooks = receiver.wait(lambda h: len(inbound(h)) >= count, 30, f"{count} inbound webhooks")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{kannel.logs()}") from None
    return inbound(hooks)


def test_messages_from_phones_reach_the_owner_through_kannel(
    kannel_server: Server, kannel: Kannel, make_receiver: Callable[..., Receiver]
) -> None:
    server = kannel_server
    receiver = make_receiver()
    owner = server.create_account("kannel-in", webhook_url=receiver.url())
    server.cli("accounts", "add-number", owner.username, OURS)
    sent = [mo(kannel, **fields) for _, fields, _ in MO_CASES]
    assert sent == [parts for *_, parts in MO_CASES]
    hooks = inbound_hooks(receiver, len(MO_CASES), kannel)
    bodies = [verify(h.body, h.headers, owner.webhook_secret) for h in hooks]
    assert [h.webhook_id for h in hooks] == [f"in_{b['inboundId']}" for b in bodies]
    # smsbox makes its calls side by side: the order they are stored in is not the SMSC's.
    by_text = {b["text"]: b for b in bodies}
    assert sorted(by_text) == sorted(fields["text"] for _, fields, _ in MO_CASES), kannel.logs()
    for _, fields, parts in MO_CASES:
        body = by_text[fields["text"]]
        assert (body["from"], body["to"], body["connector"]) == (PHONE, OURS, "kannel")
        assert (body["parts"], body["incomplete"], body["inReplyTo"]) == (parts, False, None)
    listed = server.http.get("/bat/inbound", headers=owner.headers).json()
    assert sorted(m["inboundId"] for m in listed["messages"]) == sorted(
        b["inboundId"] for b in bodies
    )
    first = next(m for m in listed["messages"] if m["inboundId"] == bodies[0]["inboundId"])
    assert first == {k: v for k, v in bodies[0].items() if k != "event"}
    # No answer to the phone: smsbox sends none (max-messages = 0), and batgate's is empty.
    smsbox_log = kannel.workdir / "smsbox.log"
    wait_for(
        lambda: (
            smsbox_log.read_text(errors="replace").count("No reply sent, denied") >= len(MO_CASES)
        ),
        "smsbox to be done with the calls",
    )
    stats = asyncio.run(control(kannel.smsc, "GET", "/stats?messages=1"))
    assert [m for m in stats["messages"] if m["destination"] == PHONE.removeprefix("+")] == []


def test_a_part_whose_message_kannel_could_not_join_is_incomplete(
    kannel_server: Server, kannel: Kannel, make_receiver: Callable[..., Receiver]
) -> None:
    receiver = make_receiver()
    owner = kannel_server.create_account("kannel-part", webhook_url=receiver.url())
    ours = "+380441230001"
    kannel_server.cli("accounts", "add-number", owner.username, ours)
    assert mo(kannel, to=ours, text=LONG, split="udh", only=[1]) == 1  # part 2 never comes
    (hook,) = inbound_hooks(receiver, 1, kannel)  # after JOIN_TIMEOUT, with its UDH in %u
    body = verify(hook.body, hook.headers, owner.webhook_secret)
    assert (body["to"], body["parts"], body["incomplete"]) == (ours, 1, True)
    assert LONG.startswith(body["text"]) and len(body["text"]) > 100


def test_a_message_to_a_number_nobody_owns_is_kept_unrouted(
    kannel_server: Server, kannel: Kannel
) -> None:
    mo(kannel, to="+380449999999", text="anyone there?")

    def unrouted() -> list[dict[str, Any]]:
        out = kannel_server.cli("inbound", "--unrouted", "--json").stdout.splitlines()
        return [json.loads(line) for line in out]

    wait_for(lambda: bool(unrouted()), "the unrouted message", timeout=20)
    (found,) = unrouted()
    assert (found["from"], found["to"], found["text"], found["account"]) == (
        PHONE,
        "+380449999999",
        "anyone there?",
        None,
    )


def test_an_inbound_call_without_the_token_stores_nothing(
    kannel_server: Server, account: Account
) -> None:
    query = "kind=mo&from=%2B380501112233&to=%2B380448888888&text=forged"
    for token in ("", "&token=wrong-token-0123456789"):
        answer = httpx.get(f"{kannel_server.base_url}/callbacks/kannel?{query}{token}", timeout=10)
        kannel_server.assert_error(answer, 401, "UNAUTHORIZED")
    out = kannel_server.cli("inbound", "--unrouted", "--json").stdout
    assert "forged" not in out
