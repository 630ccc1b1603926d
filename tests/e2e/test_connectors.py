"""`batgate connectors`: every running process's view of its connectors, and the
operator's drain switch, which takes effect in every process within seconds.

Real processes sharing one database: an API process with its engine and a
`batgate worker`, the sandbox in each; the real command line.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from databases import Databases, raw_connection
from waiting import wait_until

if TYPE_CHECKING:
    from conftest import Fleet, Server

pytestmark = pytest.mark.e2e

ENGINES = {
    "BATGATE_DISPATCHER__CONNECTOR_REPORT_SECONDS": "0.3",
    "BATGATE_SANDBOX__DELIVERY_DELAY": "0.1",
    "BATGATE_SANDBOX__JITTER": "0",
}
SMS = {"from": "batgate", "to": "+380501234567", "type": "sms", "text": "Hello"}


def connectors(server: Server) -> dict[str, dict[str, Any]]:
    out = server.cli("connectors", "--json").stdout
    return {doc["name"]: doc for doc in map(json.loads, out.splitlines())}


def reported_states(url: str) -> list[str]:
    """What each process last wrote of the sandbox (its own view)."""
    with raw_connection(url) as raw:
        rows = raw.execute("SELECT state FROM connector_reports WHERE connector = 'sandbox'")
        return [state for (state,) in rows]


def entered(server: Server, message_id: str, status: str) -> float | None:
    """When the message entered `status`, from its story (`batgate messages show`)."""
    story = json.loads(server.cli("messages", "show", message_id, "--json").stdout)
    times = [line["at"] for line in story["story"] if line.get("status") == status]
    return datetime.fromisoformat(times[0]).timestamp() if times else None


@pytest.fixture
def two_engines(
    fleet: Fleet, databases: Databases, backend: str, tmp_path: Path
) -> tuple[Server, str]:
    """An API process with its engine and a worker on one database; and its URL."""
    url = databases.url(backend, tmp_path)
    env = fleet.env(url, ENGINES)
    api = fleet.serve(env)
    fleet.worker(env)
    return api, url


def test_every_process_reports_its_connectors(two_engines: tuple[Server, str]) -> None:
    api, _ = two_engines
    account = api.create_account("connectors")
    sent = api.send_one(account, SMS)
    api.wait_final(account, sent["messageId"])
    view = wait_until(
        lambda: connectors(api)["sandbox"],
        lambda v: v["processes"] == 2 and v["sentPerMinute"] >= 1,
        "both processes to report the sandbox, one hand-over sent",
    )
    assert view["state"] == "up"
    assert view["drained"] is False
    assert view["inFlight"] == 0


def test_a_drained_connector_takes_nothing_in_any_process_until_enabled(
    two_engines: tuple[Server, str],
) -> None:
    api, url = two_engines
    account = api.create_account("drain")
    wait_until(lambda: reported_states(url), lambda s: len(s) == 2, "both processes to report")

    drained = api.cli("connectors", "drain", "sandbox")
    assert "drained sandbox" in drained.stdout
    assert connectors(api)["sandbox"]["state"] == "drained"
    wait_until(
        lambda: reported_states(url),
        lambda s: s == ["drained", "drained"],
        "every process to skip the drained sandbox",
    )
    held = [api.send_one(account, SMS)["messageId"] for _ in range(4)]
    enabled_at = time.time()
    assert "enabled sandbox" in api.cli("connectors", "enable", "sandbox").stdout
    for message_id in held:
        assert api.wait_final(account, message_id).final["deliverystatus"] == "delivered"
        handed = entered(api, message_id, "processing")
        assert handed is not None and handed >= enabled_at - 0.05, (message_id, handed)


def test_an_unknown_connector_cannot_be_drained(two_engines: tuple[Server, str]) -> None:
    done = two_engines[0].cli("connectors", "drain", "nope", check=False)
    assert done.returncode == 2
    assert "no connector named 'nope'" in done.stderr
