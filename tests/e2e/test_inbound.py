"""Inbound messages end to end (SPEC §10–§11): the test SMSC (tests/peers/smsc34.py)
sends mobile-originated messages over the connection `batgate serve` bound; each one
reaches the owning account's webhook receiver (another process), signed, and
`GET /bat/inbound`; one to an unowned number is unrouted; STOP and START change what
the account may send, and each is answered once. Both databases."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from peers_support import Peer, start_peer, stop_peer

from batgate.webhooks import verify

if TYPE_CHECKING:
    from conftest import Account, Hook, Receiver, Server

pytestmark = pytest.mark.e2e

OURS = "+380441230000"  # the account's number
PHONE = "+380501234567"
UKRAINIAN = "Так, підтверджую замовлення №1001 — дякую!"  # UCS-2
LONG = "Please call me back about order 1001, the one with the blue box. " * 4


def carrier_toml(peer: Peer) -> str:
    return f"""
[connectors.carrier1]
kind = "smpp"
host = "127.0.0.1"
port = {peer.port}
system_id = "batgate"
password = "secret"
reconnect_delay = 0.2
mo_reassembly_timeout = 1.0

[routes]
sms = "carrier1"

[accounts."*"]
opt_out_reply = "You will get no more messages. Text START to undo."
opt_in_reply = "Welcome back."
"""


@pytest.fixture(scope="module")
def smsc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    peer = start_peer("smsc34.py", [], tmp_path_factory.mktemp("smsc34"))
    try:
        yield peer
    finally:
        assert stop_peer(peer) == 0, peer.log()


@pytest.fixture
def gateway(tmp_path: Path, smsc: Peer, start_webhook_server: Callable[..., Server]) -> Server:
    config = tmp_path / "carrier.toml"
    config.write_text(carrier_toml(smsc))
    return start_webhook_server(tmp_path / "server", {"BATGATE_CONFIG": str(config)})


def mo(smsc: Peer, **fields: Any) -> int:
    """Have the SMSC send an MO (smsc34's `POST /mo`); how many parts it sent."""
    body = {"from": PHONE, "to": OURS, "coding": "gsm7", "split": None, **fields}
    deadline = time.monotonic() + 15
    while True:  # until the gateway has bound (409: no session yet)
        answer = httpx.post(f"http://127.0.0.1:{smsc.control_port}/mo", json=body, timeout=10)
        if answer.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["sent"])


def owner(gateway: Server, receiver: Receiver, number: str = OURS) -> Account:
    account = gateway.create_account("inbound", webhook_url=receiver.url())
    gateway.cli("accounts", "add-number", account.username, number)
    return account


def inbound_hooks(receiver: Receiver, count: int) -> list[Hook]:
    hooks = receiver.wait(
        lambda h: sum(x.webhook_id.startswith("in_") for x in h) >= count,
        20,
        f"{count} inbound webhooks",
    )
    return [h for h in hooks if h.webhook_id.startswith("in_")]


CASES = [
    ("GSM-7", {"text": "Yes, please {€}"}, "Yes, please {€}", 1),
    ("UCS-2", {"text": UKRAINIAN, "coding": "ucs2"}, UKRAINIAN, 1),
    ("Latin-1", {"text": "Très bien, merci", "coding": "latin1"}, "Très bien, merci", 1),
    ("UDH, 8-bit ref", {"text": LONG, "split": "udh"}, LONG, 2),
    (
        "UDH, 16-bit ref, UCS-2",
        {"text": UKRAINIAN * 3, "coding": "ucs2", "split": "udh16"},
        UKRAINIAN * 3,
        2,
    ),
    ("sar TLVs", {"text": LONG, "split": "sar"}, LONG, 2),
]


def test_each_kind_of_mo_reaches_the_owner_signed_and_listed(
    gateway: Server, smsc: Peer, receiver: Receiver
) -> None:
    account = owner(gateway, receiver)
    sent = [mo(smsc, **fields) for _, fields, _, _ in CASES]
    assert sent == [parts for *_, parts in CASES]
    hooks = inbound_hooks(receiver, len(CASES))
    bodies = [verify(h.body, h.headers, account.webhook_secret) for h in hooks]
    assert [h.webhook_id for h in hooks] == [f"in_{b['inboundId']}" for b in bodies]
    # One sender's messages come in the order they were stored.
    assert [b["text"] for b in bodies] == [text for _, _, text, _ in CASES]
    assert [b["parts"] for b in bodies] == [parts for *_, parts in CASES]
    for body in bodies:
        assert body["event"] == "inbound"
        assert (body["from"], body["to"], body["connector"]) == (PHONE, OURS, "carrier1")
        assert body["incomplete"] is False and body["inReplyTo"] is None
    listed = gateway.http.get("/bat/inbound", headers=account.headers).json()
    assert [m["inboundId"] for m in listed["messages"]] == [b["inboundId"] for b in bodies]
    assert listed["messages"][0] == {k: v for k, v in bodies[0].items() if k != "event"}
    assert listed["nextCursor"] is None


def test_a_reply_names_the_message_it_answers(
    gateway: Server, smsc: Peer, receiver: Receiver
) -> None:
    account = owner(gateway, receiver)
    sent = gateway.send_one(account, {"type": "sms", "from": "Shop", "to": PHONE, "text": "Ok?"})
    gateway.wait_final(account, sent["messageId"], 20)
    mo(smsc, text="OK")
    (hook,) = inbound_hooks(receiver, 1)
    assert hook.payload["inReplyTo"] == sent["messageId"]


def test_missing_parts_give_an_incomplete_message(
    gateway: Server, smsc: Peer, receiver: Receiver
) -> None:
    account = owner(gateway, receiver)
    mo(smsc, text=LONG, split="udh", only=[1])  # the second part never comes
    (hook,) = inbound_hooks(receiver, 1)
    body = verify(hook.body, hook.headers, account.webhook_secret)
    assert (body["parts"], body["incomplete"]) == (1, True)
    assert LONG.startswith(body["text"]) and body["text"]


def test_an_mo_to_an_unowned_number_is_unrouted(
    gateway: Server, smsc: Peer, receiver: Receiver
) -> None:
    owner(gateway, receiver)
    mo(smsc, to="+380449999999", text="anyone there?")
    deadline = time.monotonic() + 15
    while True:
        out = gateway.cli("inbound", "--unrouted", "--json").stdout.splitlines()
        if out or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (line,) = out
    unrouted = json.loads(line)
    assert (unrouted["to"], unrouted["text"], unrouted["account"]) == (
        "+380449999999",
        "anyone there?",
        None,
    )
    assert [h for h in receiver.hooks() if h.webhook_id.startswith("in_")] == []


def outcome(gateway: Server, account: Account, *numbers: str) -> list[str]:
    messages = [{"type": "sms", "from": "Shop", "to": n, "text": "Sale!"} for n in numbers]
    answer = gateway.send(account, messages)
    return [
        m["error"]["code"] if m["status"] == "rejected" else m["status"] for m in answer["messages"]
    ]


def test_stop_then_start(gateway: Server, smsc: Peer, receiver: Receiver) -> None:
    account = owner(gateway, receiver)
    other = "+447911123456"
    mo(smsc, text="Stop")
    inbound_hooks(receiver, 1)
    assert outcome(gateway, account, PHONE, other) == ["OPTED_OUT", "accepted"]
    mo(smsc, text="START")
    inbound_hooks(receiver, 2)
    assert outcome(gateway, account, PHONE) == ["accepted"]

    # Each keyword answered once: the account's messages to PHONE are the two answers
    # and its one send after START (the OPTED_OUT one was never stored).
    def delivered(hooks: list[Hook]) -> set[str]:
        return {
            h.payload["messageId"] for h in hooks if h.payload.get("deliverystatus") == "delivered"
        }

    receiver.wait(lambda h: len(delivered(h)) >= 4, 30, "the answers and the sends delivered")
    time.sleep(1)  # anything answered twice would be on its way by now
    ids = delivered(receiver.hooks())
    to_phone = [mid for mid in ids if gateway.status(account, mid)["to"] == PHONE]
    assert len(ids) == 4 and len(to_phone) == 3, ids
