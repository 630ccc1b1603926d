"""`kind = "smsbat"`: a batgate whose carrier is another SMSBAT-compatible API — here a
second `batgate serve` with its sandbox, a real process on its own database.

The gateway under test (downstream, on each backend) routes Viber, RCS and flash calls
to the connector `up` (statuses by the upstream's signed webhooks at
`/callbacks/up`) and SMS to `poll` (the same upstream, another account, no webhooks:
statuses by polling). Each step is handed over on its own, so its status, reason and
carrier cost are known here; the upstream's sandbox decides by the number's ending
(SPEC §7).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from batgate.webhooks import signature_headers
from databases import Databases, raw_connection
from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Account, Server

pytestmark = pytest.mark.e2e

BATGATE = Path(sys.executable).parent / "batgate"
EXAMPLES: list[dict[str, Any]] = json.loads(
    Path(__file__).with_name("smsbat_examples.json").read_text(encoding="utf-8")
)

QUICK = {
    "BATGATE_SANDBOX__DELIVERY_DELAY": "0.1",
    "BATGATE_SANDBOX__JITTER": "0",
    "BATGATE_DISPATCHER__POLL_INTERVAL": "0.05",
    "BATGATE_DISPATCHER__RETRY_DELAYS": "[0.2,0.2,0.2]",
    "BATGATE_DISPATCHER__CONNECTOR_REPORT_SECONDS": "0.3",
    "BATGATE_RATE_LIMIT__ENABLED": "false",
    "BATGATE_WEBHOOKS__RETRY_DELAYS": "[0.2,0.2]",
    "BATGATE_WEBHOOKS__REPEAT_EVERY": "0.2",
    "BATGATE_WEBHOOKS__POLL_INTERVAL": "0.05",
    # Few connections each: this module runs beside others on one PostgreSQL server
    # (max_connections 100); it needs no more.
    "BATGATE_DATABASE_POOL_SIZE": "3",
}
# The upstream refuses SMS of more than three parts: a step it rejects, with its reason.
# Killed, it takes back the messages it had claimed when their lease runs out: soon.
UPSTREAM = {**QUICK, "BATGATE_MAX_PARTS": "3", "BATGATE_DISPATCHER__LEASE_SECONDS": "2"}

VIBER = {"from": "batgate", "type": "viber_trans", "text": "Your order has shipped"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream:
    """The upstream `batgate serve`, on a SQLite file and a fixed port, so that it can
    be killed (-9) and started again where the downstream expects it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = workdir / "upstream.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BATGATE_")}
        self.env |= {**UPSTREAM, "BATGATE_DATABASE_URL": f"sqlite:///{self.database}"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with (self.workdir / f"upstream-{self.starts}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [str(BATGATE), "serve", "--port", str(self.port)],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy, bool, "the upstream to serve", timeout=30)

    def _healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log()
        try:
            answer = httpx.get(f"{self.url}/healthz", timeout=1)
        except httpx.TransportError:
            return False
        # Only our process counts: another test's server may have taken the port.
        assert answer.status_code != 200 or answer.json().get("pid") == self.proc.pid, (
            "the upstream's port was taken by another process"
        )
        return answer.status_code == 200

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(BATGATE), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def log(self) -> str:
        return "".join(
            (self.workdir / f"upstream-{n}.log").read_text(errors="replace")
            for n in range(1, self.starts + 1)
        )

    def handed(self, message_id: str) -> list[tuple[str, str]]:
        """The upstream's messages for a message of ours (any step): their
        customerMessageId and stored chain, as the upstream keeps them."""
        with sqlite3.connect(self.database) as db:
            rows = db.execute(
                "SELECT customer_message_id, chain FROM messages "
                "WHERE customer_message_id LIKE ? ORDER BY customer_message_id",
                (f"{message_id}.%",),
            ).fetchall()
        return [(str(c), str(chain)) for c, chain in rows]

    def copies(self) -> dict[str, int]:
        """How many upstream messages carry each customerMessageId."""
        with sqlite3.connect(self.database) as db:
            rows = db.execute(
                "SELECT customer_message_id, COUNT(*) FROM messages GROUP BY customer_message_id"
            ).fetchall()
        return {str(c): int(n) for c, n in rows}


@dataclass
class Pair:
    upstream: Upstream
    down: Server
    account: Account
    webhook_secret: str  # the upstream's, which signs its webhooks to `up`


def connector_tables(upstream: Upstream, webhooks: dict[str, Any], polled: dict[str, Any]) -> str:
    return f"""
[connectors.up]
kind = "smsbat"
url = "{upstream.url}"
api_key = "{webhooks["apiKey"]}"
webhook_secret = "{webhooks["webhookSecret"]}"
batch_window = 0.02
poll_after = 20

[connectors.poll]
kind = "smsbat"
url = "{upstream.url}"
api_key = "{polled["apiKey"]}"
batch_window = 0.02
poll_after = 0.2
poll_interval = 0.1

[[routes]]
channels = ["viber", "rcs", "flashcall"]
connectors = ["up"]

[[routes]]
channels = ["sms"]
connectors = ["poll"]
"""


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
    databases: Databases,
    backend: str,
    start_module_server: Callable[..., Server],
) -> Iterator[Pair]:
    upstream = Upstream(tmp_path_factory.mktemp(f"upstream-{backend}"))
    with ExitStack() as stack:
        stack.callback(upstream.stop)
        upstream.start()
        webhooks = json.loads(upstream.cli("accounts", "create", "downstream"))
        polled = json.loads(upstream.cli("accounts", "create", "polled"))
        workdir = tmp_path_factory.mktemp(f"downstream-{backend}")
        config = workdir / "batgate.toml"
        config.write_text(connector_tables(upstream, webhooks, polled))
        url = databases.url(backend, workdir)
        down = start_module_server(workdir, {**QUICK, "BATGATE_CONFIG": str(config)}, url)
        upstream.cli("accounts", "set-webhook", "downstream", f"{down.base_url}/callbacks/up")
        account = down.create_account("shop")
        yield Pair(upstream, down, account, webhooks["webhookSecret"])


def story(server: Server, message_id: str) -> list[dict[str, Any]]:
    shown = json.loads(server.cli("messages", "show", message_id, "--json").stdout)
    return list(shown["story"])


def statuses(server: Server, account: Account, ids: list[str]) -> Counter[str]:
    """How many of the messages are in each status (bulk reads of 1,000)."""
    seen: Counter[str] = Counter()
    for start in range(0, len(ids), 1000):
        answer = server.http.post(
            "/bat/message/status",
            json={"messageIds": ids[start : start + 1000]},
            headers=account.headers,
        )
        assert answer.status_code == 200, answer.text
        seen.update(doc["deliverystatus"] for doc in answer.json()["messages"])
    return seen


def example_messages() -> list[dict[str, Any]]:
    """Every message of SMSBAT's documented examples (all eight types)."""
    found = []
    for example in EXAMPLES:
        found += example["body"]["messages"] if "body" in example else [example["message"]]
    return found


def test_every_documented_example_is_delivered_through_the_upstream(pair: Pair) -> None:
    messages = example_messages()
    assert {m["type"] for m in messages} == {
        "sms",
        "viber_promo",
        "viber_trans",
        "viber_carousel",
        "viber_survey",
        "viber_otp",
        "rcs",
        "flashcall",
    }
    answer = pair.down.send(pair.account, messages)
    entries = answer["messages"]
    assert [e["status"] for e in entries] == ["accepted"] * len(messages), entries
    ids = [e["messageId"] for e in entries]
    traces = pair.down.wait_all(pair.account, ids, timeout=60)
    assert {t.final["deliverystatus"] for t in traces.values()} == {"delivered"}
    for sent, message_id in zip(messages, ids, strict=True):
        handed = pair.upstream.handed(message_id)
        assert [c for c, _ in handed] == [f"{message_id}.0"], handed
        step = json.loads(handed[0][1])[0]
        # The step as sent, its messageData unchanged; no fallback given upstream.
        assert step["type"] == sent["type"]
        assert step["messageData"] == sent.get("messageData"), (sent, step)
        assert len(json.loads(handed[0][1])) == 1


def test_a_viber_step_the_upstream_cannot_deliver_falls_back_to_sms_on_another_connector(
    pair: Pair,
) -> None:
    message = {
        **VIBER,
        "to": "+380501230003",
        "fallback": {"type": "sms", "text": "Your order has shipped"},
    }
    sent = pair.down.send_one(pair.account, message)
    final = pair.down.wait_final(pair.account, sent["messageId"], timeout=30).final
    assert final["deliverystatus"] == "delivered"
    assert final["extendedStatuses"] == {"viber": "undeliverable", "sms": "delivered"}
    handed = [c for c, _ in pair.upstream.handed(sent["messageId"])]
    assert handed == [f"{sent['messageId']}.0", f"{sent['messageId']}.1"]
    lines = story(pair.down, sent["messageId"])
    reasons = [line["reason"] for line in lines if line.get("step") == 1]
    assert any(r.startswith("handed to poll by route 2") for r in reasons), lines


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        pytest.param(
            {**VIBER, "to": "+380501230001"},
            "the carrier's receipt: undeliverable",
            id="undeliverable upstream (0001)",
        ),
        pytest.param(
            {"from": "batgate", "type": "sms", "to": "+380501234567", "text": "x" * 500},
            "refused: rejected by the upstream: MESSAGE_TOO_LONG",
            id="rejected by the upstream",
        ),
    ],
)
def test_a_step_that_fails_upstream_ends_undeliverable_with_its_reason(
    pair: Pair, message: dict[str, Any], reason: str
) -> None:
    sent = pair.down.send_one(pair.account, message)
    final = pair.down.wait_final(pair.account, sent["messageId"], timeout=30).final
    assert final["deliverystatus"] == "undeliverable"
    assert final["cost"] == 0
    lines = story(pair.down, sent["messageId"])
    ended = [line for line in lines if line.get("status") == "undeliverable"]
    assert ended and ended[0]["reason"].startswith(reason), lines


def test_the_upstreams_bill_is_kept_as_the_steps_carrier_cost(pair: Pair) -> None:
    sent = pair.down.send_one(pair.account, {**VIBER, "to": "+380501234567"})
    final = pair.down.wait_final(pair.account, sent["messageId"], timeout=30).final
    assert final["deliverystatus"] == "delivered"
    lines = wait_until(
        lambda: story(pair.down, sent["messageId"]),
        lambda s: any("carrier cost" in (line["reason"] or "") for line in s),
        "the carrier cost in the story",
    )
    costs = [line for line in lines if "carrier cost" in (line["reason"] or "")]
    # The upstream's default price of a Viber message: 0.03 USD.
    assert [(c["step"], c["reason"]) for c in costs] == [(0, "carrier cost: 0.03 USD (up)")]


def test_callbacks_that_are_not_the_upstreams_are_refused(pair: Pair) -> None:
    event = {"messageId": "1", "deliverystatus": "delivered", "customerMessageId": "x.0"}
    body = json.dumps(event).encode()
    url = f"{pair.down.base_url}/callbacks/up"
    secret = "whsec_" + "A" * 32
    now = int(time.time())
    cases: dict[str, dict[str, str]] = {
        "unsigned": {},
        "signed with another secret": signature_headers([secret], "m1", now, body),
        "signed, but stale": signature_headers([pair.webhook_secret], "m2", now - 3600, body),
    }
    for case, headers in cases.items():
        answer = httpx.post(url, content=body, headers=headers)
        assert answer.status_code == 401, (case, answer.text)
        assert answer.json()["error"]["code"] == "UNAUTHORIZED", case
    unknown = httpx.post(f"{pair.down.base_url}/callbacks/nobody", content=body)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "NOT_FOUND"


def test_the_upstreams_inbound_events_reach_the_owner_of_the_number(pair: Pair) -> None:
    """An upstream batgate's `inbound` webhook (SPEC §10), signed with its secret, is an
    inbound message here, routed by this gateway's own owned numbers."""
    owner = pair.down.create_account("owner")
    pair.down.cli("accounts", "add-number", owner.username, "+380441230000")
    url = f"{pair.down.base_url}/callbacks/up"
    for inbound_id, (to, text) in enumerate([("+380441230000", "Yes"), ("Nobody", "?")]):
        event = {
            "event": "inbound",
            "inboundId": 900 + inbound_id,
            "from": "+380501234567",
            "to": to,
            "text": text,
            "receivedAt": "2026-12-07T10:00:00Z",
            "parts": 1,
            "incomplete": False,
            "connector": "their-smsc",
            "inReplyTo": None,
        }
        body = json.dumps(event).encode()
        headers = signature_headers(
            [pair.webhook_secret], f"in_{900 + inbound_id}", int(time.time()), body
        )
        answer = httpx.post(url, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
    listed = pair.down.http.get("/bat/inbound", headers=owner.headers).json()
    (message,) = listed["messages"]
    assert (message["from"], message["to"], message["text"]) == (
        "+380501234567",
        "+380441230000",
        "Yes",
    )
    assert message["connector"] == "up"
    unrouted = json.loads(pair.down.cli("inbound", "--unrouted", "--json").stdout.splitlines()[-1])
    assert (unrouted["to"], unrouted["text"], unrouted["account"]) == ("Nobody", "?", None)


def downstream_with_a_wrong_key(
    pair: Pair, tmp_path: Path, url: str, start_server: Callable[..., Server]
) -> Server:
    config = tmp_path / "batgate.toml"
    config.write_text(
        f'[connectors.up]\nkind = "smsbat"\nurl = "{pair.upstream.url}"\n'
        'api_key = "not-a-key"\nbatch_window = 0.02\n\n'
        '[[routes]]\nchannels = ["sms"]\nconnectors = ["up"]\n'
    )
    return start_server(tmp_path, {**QUICK, "BATGATE_CONFIG": str(config)}, url)


def connector_view(server: Server, name: str) -> dict[str, Any]:
    views = map(json.loads, server.cli("connectors", "--json").stdout.splitlines())
    return next(v for v in views if v["name"] == name)


def test_a_refused_api_key_takes_the_connector_down_and_uses_no_attempts(
    pair: Pair, tmp_path: Path, database_url: str, start_server: Callable[..., Server]
) -> None:
    down = downstream_with_a_wrong_key(pair, tmp_path, database_url, start_server)
    account = down.create_account("held")
    sms = {"from": "batgate", "type": "sms", "to": "+380501234567", "text": "Hi"}
    ids = [m["messageId"] for m in down.send(account, [sms] * 3)["messages"]]
    wait_until(
        lambda: reported_state(database_url, "up"),
        lambda state: state == "down",
        "the engine to report the connector down",
    )
    view = connector_view(down, "up")
    assert view["state"] == "down", view
    assert "refused our API key (HTTP 401" in view["lastError"], view
    assert [down.status(account, i)["deliverystatus"] for i in ids] == ["scheduled"] * 3
    notes = [line["reason"] for line in story(down, ids[0]) if "step" in line]
    assert not any("attempt" in n for n in notes), notes
    assert [pair.upstream.handed(i) for i in ids] == [[], [], []]
    assert "refused our API key" in down.log.read_text()


def reported_state(url: str, connector: str) -> str | None:
    with raw_connection(url) as raw:
        rows = raw.execute(
            "SELECT state FROM connector_reports WHERE connector = ?", (connector,)
        ).fetchall()
    return str(rows[0][0]) if rows else None


def test_the_upstream_killed_and_restarted_mid_send_loses_and_repeats_nothing(
    pair: Pair,
) -> None:
    messages = [{**VIBER, "to": f"+38050{n:04d}678"} for n in range(2000)]
    ids: list[str] = []
    for start in range(0, len(messages), 500):
        answer = pair.down.send(pair.account, messages[start : start + 500])
        ids += [e["messageId"] for e in answer["messages"]]
    wait_until(
        lambda: sum(1 for c in pair.upstream.copies() if c.split(".")[0] in set(ids)),
        lambda n: n >= 300,
        "some of them to reach the upstream",
        timeout=60,
    )
    pair.upstream.kill()
    time.sleep(0.2)  # hand-overs meet a dead upstream meanwhile
    pair.upstream.start()
    finals = wait_until(
        lambda: statuses(pair.down, pair.account, ids),
        lambda seen: not seen.keys() & {"scheduled", "processing"},
        "every message to be final",
        timeout=90,
        interval=0.5,
    )
    assert finals == {"delivered": len(ids)}, finals
    copies = pair.upstream.copies()
    assert {c: n for c, n in copies.items() if n > 1} == {}
    assert all(copies.get(f"{i}.0") == 1 for i in ids)
