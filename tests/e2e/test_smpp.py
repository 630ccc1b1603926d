"""A carrier over SMPP, end to end: `batgate serve --config carrier.toml` routes SMS to a
third-party SMSC process (smpp34's Server, tests/peers/smsc34.py), and a client sees
the receipts as statuses over HTTP and as webhooks, on both databases.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from peers_support import Peer, control, start_peer, stop_peer

if TYPE_CHECKING:
    from conftest import Receiver, Server

pytestmark = pytest.mark.e2e

UCS_LONG = "Ваше замовлення №1001 готове — дякуємо! " * 3


def carrier_toml(peer: Peer) -> str:
    return f"""
[connectors.carrier1]
kind = "smpp"
host = "127.0.0.1"
port = {peer.port}
system_id = "batgate"
password = "secret"
window = 32
reconnect_delay = 0.2
throttle_delay = 0.2

[routes]
sms = "carrier1"
"""


@pytest.fixture(scope="module")
def smsc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    peer = start_peer("smsc34.py", [], tmp_path_factory.mktemp("smsc34"))
    try:
        yield peer
    finally:
        assert stop_peer(peer) == 0, peer.log()


@pytest.fixture
def smpp_server(tmp_path: Path, smsc: Peer, start_webhook_server: Callable[..., Server]) -> Server:
    """The fast server with quick webhooks, its SMS routed to the SMSC (BATGATE_CONFIG)."""
    asyncio.run(control(smsc, "POST", "/reset"))  # the SMSC forgets numbers it has seen
    config = tmp_path / "carrier.toml"
    config.write_text(carrier_toml(smsc))
    return start_webhook_server(tmp_path / "server", {"BATGATE_CONFIG": str(config)})


# (id, message, final status, extendedStatuses (chains only), partscount)
CASES: list[tuple[str, dict[str, Any], str, dict[str, str] | None, int]] = [
    (
        "delivered",
        {"type": "sms", "to": "+380501114567", "text": "Order #1001 confirmed"},
        "delivered",
        None,
        1,
    ),
    (
        "UNDELIV receipt",
        {"type": "sms", "to": "+380501110001", "text": "Order #1002"},
        "undeliverable",
        None,
        1,
    ),
    (
        "ESME_RINVDSTADR",
        {"type": "sms", "to": "+380501110003", "text": "Order #1003"},
        "undeliverable",
        None,
        1,
    ),
    (
        "throttled, then delivered",
        {"type": "sms", "to": "+380501110002", "text": "Order #1004"},
        "delivered",
        None,
        1,
    ),
    (
        "long UCS-2",
        {"type": "sms", "to": "+380501124567", "text": UCS_LONG},
        "delivered",
        None,
        2,
    ),
    (
        "Viber on the sandbox, then SMS over SMPP",
        {
            "type": "viber_promo",
            "to": "+380501120002",  # the sandbox fails Viber for good; the SMSC throttles
            "text": "20% off today",
            "fallback": {"type": "sms", "text": "20% off today"},
        },
        "delivered",
        {"viber": "permanenterror", "sms": "delivered"},
        1,
    ),
]


def test_receipts_become_statuses_and_webhooks(
    smpp_server: Server, make_receiver: Callable[..., Receiver], smsc: Peer
) -> None:
    receiver = make_receiver()
    account = smpp_server.create_account("smpp", webhook_url=receiver.url())
    messages = [{"from": "MyShop", **m} for _, m, _, _, _ in CASES]
    answer = smpp_server.send(account, messages)
    ids = [m["messageId"] for m in answer["messages"]]
    assert [m["status"] for m in answer["messages"]] == ["accepted"] * len(CASES)
    traces = smpp_server.wait_all(account, ids, timeout=30)
    for (name, _, final, extended, parts), message_id in zip(CASES, ids, strict=True):
        doc = traces[message_id].final
        traces[message_id].assert_walk(final)
        assert doc["deliverystatus"] == final, name
        assert doc.get("extendedStatuses") == extended, name
        assert doc["partscount"] == parts, name
        sms_price = smpp_server.rates["sms"]
        expected_cost = round(sms_price * parts, 6) if final == "delivered" else 0
        assert doc["cost"] == pytest.approx(expected_cost), name
    hooks = receiver.wait(
        lambda hs: (
            {(h.payload["messageId"], h.payload["deliverystatus"]) for h in hs}
            >= {(i, traces[i].final["deliverystatus"]) for i in ids}
        ),
        timeout=20,
        what="a webhook with each final status",
    )
    assert all(h.acked for h in hooks)
    # The SMSC's own words in its receipt are in the story of the one it did not deliver.
    undelivered = ids[[c[0] for c in CASES].index("UNDELIV receipt")]
    story = json.loads(smpp_server.cli("messages", "show", undelivered, "--json").stdout)
    told = [line["reason"] for line in story["story"] if line.get("reason")]
    assert any("SMSC: UNDELIVERABLE err:001" in why for why in told), told
    metrics = httpx.get(f"{smpp_server.base_url}/metrics", timeout=10).text
    assert 'batgate_smpp_bound_connections{connector="carrier1"} 1.0' in metrics
    assert 'batgate_smpp_submits_total{connector="carrier1",result="ESME_RTHROTTLED"}' in metrics
    assert 'batgate_smpp_receipts_total{connector="carrier1",state="DELIVERED"}' in metrics


def test_the_smsc_sees_what_was_sent(smpp_server: Server, smsc: Peer) -> None:
    account = smpp_server.create_account("seen")
    entry = smpp_server.send_one(
        account, {"type": "sms", "from": "MyShop", "to": "+380501134567", "text": "Hello there"}
    )
    smpp_server.wait_final(account, entry["messageId"], timeout=20)
    found = asyncio.run(control(smsc, "GET", "/stats?messages=1"))
    (seen,) = [m for m in found["messages"] if m["destination"] == "380501134567"]
    assert seen["source"] == "MyShop"
    assert bytes.fromhex(seen["shortMessage"]) == b"Hello there"
    assert seen["dataCoding"] == 0


# (id, config text, the key the error must name)
BAD_CONFIGS = [
    (
        "port out of range",
        'kind = "smpp"\nhost = "h"\nport = 700000\nsystem_id = "x"',
        "connectors.c1.port",
    ),
    (
        "a typo",
        'kind = "smpp"\nhost = "h"\nport = 2775\nsystem_id = "x"\nwindw = 3',
        "connectors.c1.windw",
    ),
    ("no host", 'kind = "smpp"\nport = 2775\nsystem_id = "x"', "connectors.c1.host"),
    (
        "unknown kind",
        'kind = "pigeon"\nhost = "h"\nport = 2775\nsystem_id = "x"',
        "connectors.c1.kind",
    ),
]


@pytest.mark.parametrize(
    ("body", "key"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_configuration_is_refused_at_start_naming_the_key(
    tmp_path: Path, body: str, key: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(f'[connectors.c1]\n{body}\n\n[routes]\nsms = "c1"\n')
    done = _serve(tmp_path, {"BATGATE_CONFIG": str(config)})
    assert done.returncode != 0
    assert key in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_route_to_an_undeclared_connector_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text('[routes]\nsms = "nowhere"\n')
    done = _serve(tmp_path, {}, "--config", str(config))
    assert done.returncode != 0
    assert "routes.sms" in done.stderr and "nowhere" in done.stderr, done.stderr


def _batgate(workdir: Path, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`batgate ARGS` on a SQLite file in `workdir`, with no inherited BATGATE_* setting."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BATGATE_")}
    clean |= {"BATGATE_DATABASE_URL": f"sqlite:///{workdir / 'x.db'}", **env}
    return subprocess.run(
        [str(Path(sys.executable).parent / "batgate"), *args],
        env=clean,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _serve(workdir: Path, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _batgate(workdir, env, "serve", "--port", "1", *args)


def test_config_file_of_the_docs_is_valid(tmp_path: Path) -> None:
    """The sample in docs/smpp.md parses (it names a carrier that is not there: no start)."""
    docs = Path(__file__).parents[2] / "docs" / "smpp.md"
    text = docs.read_text()
    sample = text.split("```toml", 1)[1].split("```", 1)[0]
    config = tmp_path / "sample.toml"
    config.write_text(sample)
    done = _batgate(tmp_path, {}, "--config", str(config), "accounts", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""  # no accounts yet: the point is that the file loaded
