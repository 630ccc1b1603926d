"""The user commands (send, status, wait, report) against a live `batgate serve`.

Through Typer's runner, and once as a subprocess interrupted with SIGINT. The CSV
send is interrupted for real: a proxy in front of the server loses a chunk's
answer after the server stored it (or holds it while the command is killed), and
the resumed send must neither lose nor store anything twice.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from client_support import BATGATE, LiveServer, Proxy, free_port
from typer.testing import CliRunner

from batgate.cli.main import app

pytestmark = pytest.mark.e2e

OK = "+380501234567"
SLOW = "+380501230004"


@pytest.fixture
def cli(server: LiveServer, api_key: str) -> Any:
    """`cli(*args, url=None, key=…)`: run `batgate …` in-process; the runner's result."""
    runner = CliRunner()

    def invoke(*args: str, url: str | None = None, key: str | None = api_key) -> Any:
        env = {"BATGATE_URL": url or server.url, "BATGATE_API_KEY": key, "BATGATE_SENDER": None}
        return runner.invoke(app, list(args), env=env)

    return invoke


@pytest.fixture
def proxy(server: LiveServer) -> Iterator[Proxy]:
    p = Proxy(server.url)
    try:
        yield p
    finally:
        p.close()


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def numbers(n: int, bad: Collection[int] = ()) -> list[dict[str, str]]:
    return [
        {
            "to": "+38050" if i in bad else f"+3805012{i:05d}",
            "text": f"hello {i}",
            "customerMessageId": f"r{i}",
        }
        for i in range(n)
    ]


def report_totals(server: LiveServer, api_key: str, list_ids: list[int]) -> int:
    headers = {"X-Authorization-Key": api_key}
    return sum(
        httpx.get(f"{server.url}/bat/messagelist/{i}", headers=headers).json()["total"]
        for i in list_ids
    )


def state_records(csv_path: Path) -> list[dict[str, Any]]:
    state = csv_path.with_name(csv_path.name + ".batgate-state.jsonl")
    return [json.loads(line) for line in state.read_text().splitlines()]


# -- send, status, wait, report --------------------------------------------------------------


def test_send_one_message_then_follow_it(cli: Any) -> None:
    sent = cli("send", "--to", OK, "--text", "Order #1001 confirmed", "--from", "Shop", "--json")
    assert sent.exit_code == 0, sent.output
    answer = json.loads(sent.stdout)
    (entry,) = answer["messages"]
    assert entry["status"] == "accepted"
    message_id, list_id = entry["messageId"], answer["messagelistId"]

    table = cli("send", "--to", OK, "--text", "again", "--from", "Shop")
    assert table.exit_code == 0 and "accepted" in table.stdout and "messagelist" in table.stdout

    waited = cli("wait", message_id, "--timeout", "20", "--json")
    assert waited.exit_code == 0, waited.output
    assert [s["deliverystatus"] for s in json.loads(waited.stdout)] == ["delivered"]

    status = cli("status", message_id)
    assert status.exit_code == 0 and "delivered" in status.stdout and message_id in status.stdout
    as_json = json.loads(cli("status", message_id, "--json").stdout)
    assert as_json[0]["messageId"] == message_id and as_json[0]["cost"] == 0.05

    report = cli("report", str(list_id))
    assert report.exit_code == 0
    assert "delivery rate" in report.stdout and "100.0%" in report.stdout
    summary = json.loads(cli("report", str(list_id), "--json").stdout)
    assert (summary["total"], summary["counts"]["delivered"], summary["deliveryRate"]) == (
        1,
        1,
        1.0,
    )


def test_wait_shows_a_table_and_exits_3_on_timeout(cli: Any) -> None:
    sent = json.loads(
        cli("send", "--to", SLOW, "--text", "slow", "--from", "Shop", "--json").stdout
    )
    message_id = sent["messages"][0]["messageId"]
    waited = cli("wait", message_id, "--timeout", "0.5")
    assert waited.exit_code == 3
    assert message_id in waited.stdout
    assert waited.stderr.startswith("error: timed out") and waited.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["send", "--to", "+38050", "--text", "x", "--from", "Shop"], 1, "INVALID_RECIPIENT"),
        (["send", "--to", OK], 2, "give --to and --text"),
        (["send", "--to", OK, "--text", "x", "--idempotency-key", "a b"], 2, "--idempotency-key"),
        (["send", "--csv", "missing.csv"], 2, "does not exist"),
        (["status", "no-such-id"], 1, "1 of 1 status could not be read"),
        (["report", "987654"], 1, "batgate extension"),
        (["report", "not-a-number"], 2, "Invalid value"),
    ],
    ids=["rejected", "no-text", "bad-key", "no-csv", "unknown-id", "unknown-list", "bad-list-id"],
)
def test_errors_are_one_line_with_an_exit_code(
    cli: Any, args: list[str], code: int, text: str
) -> None:
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert text in result.stderr


def test_credentials_and_reachability_errors(cli: Any) -> None:
    missing = cli("status", "x", key=None)
    assert (missing.exit_code, missing.stderr.strip()) == (
        2,
        "error: no API key: pass --api-key or set BATGATE_API_KEY",
    )
    wrong = cli("status", "x", key="wrong")
    assert wrong.exit_code == 1 and "authentication failed" in wrong.stderr
    unreachable = cli("status", "x", url=f"http://127.0.0.1:{free_port()}")
    assert unreachable.exit_code == 1 and "cannot reach" in unreachable.stderr
    assert unreachable.stderr.count("\n") == 1


# -- CSV ---------------------------------------------------------------------------------------


def test_csv_is_sent_in_chunks_and_never_twice(
    cli: Any, server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "campaign.csv", numbers(7, bad={5}))
    first = cli("send", "--csv", str(path), "--from", "Shop", "--chunk-size", "3", "--json")
    assert first.exit_code == 1, first.output  # one row was rejected
    assert "1 of 7 messages rejected" in first.stderr
    summary = json.loads(first.stdout)
    assert (summary["messages"], summary["accepted"], summary["rejected"]) == (7, 6, 1)
    assert len(summary["messagelistIds"]) == 3
    bad = summary["rows"][5]
    assert (bad["row"], bad["error"]["code"]) == (6, "INVALID_RECIPIENT")
    assert report_totals(server, api_key, summary["messagelistIds"]) == 6

    again = cli("send", "--csv", str(path), "--from", "Shop", "--chunk-size", "3", "--json")
    assert "sent already" in again.stderr
    assert json.loads(again.stdout)["messagelistIds"] == summary["messagelistIds"]
    other = cli("send", "--csv", str(path), "--from", "Shop", "--chunk-size", "5")
    assert other.exit_code == 1 and "sent already" in other.stderr and "--batch-id" in other.stderr
    assert report_totals(server, api_key, summary["messagelistIds"]) == 6

    anew = cli("send", "--csv", str(path), "--from", "Shop", "--batch-id", "w2", "--json")
    assert set(json.loads(anew.stdout)["messagelistIds"]).isdisjoint(summary["messagelistIds"])


@pytest.mark.parametrize(
    ("rows", "options", "text"),
    [
        ([{"to": OK, "txt": "typo"}], ["--from", "Shop"], "unknown columns ['txt']"),
        ([{"to": OK}], ["--from", "Shop"], "missing columns ['text']"),
        ([{"to": OK, "text": "no sender"}], [], "line 2: no sender"),
    ],
    ids=["unknown-column", "missing-column", "no-sender"],
)
def test_a_bad_csv_sends_nothing(
    cli: Any, tmp_path: Path, rows: list[dict[str, str]], options: list[str], text: str
) -> None:
    path = write_csv(tmp_path / "bad.csv", rows)
    result = cli("send", "--csv", str(path), *options)
    assert result.exit_code == 1 and text in result.stderr
    assert not (tmp_path / "bad.csv.batgate-state.jsonl").exists()


def test_an_interrupted_csv_send_resumes_without_sending_anything_twice(
    cli: Any, server: LiveServer, api_key: str, proxy: Proxy, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "big.csv", numbers(10))
    proxy.lose_after = 1  # chunk 1 is stored, but its answer never comes back
    args = ["send", "--csv", str(path), "--from", "Shop", "--chunk-size", "3"]
    broken = cli(*args, url=proxy.url)
    assert broken.exit_code == 1
    assert "1 of 4 chunks sent; run the same command again to resume" in broken.stderr
    assert proxy.forwarded.is_set()
    kinds = [(r["kind"], r.get("chunk")) for r in state_records(path)]
    assert kinds == [("batch", None), ("sending", 0), ("done", 0), ("sending", 1)]

    proxy.heal()
    resumed = cli(*args, "--json", url=proxy.url)
    assert resumed.exit_code == 0, resumed.output
    lists = json.loads(resumed.stdout)["messagelistIds"]
    assert len(lists) == 4
    assert sorted(set(proxy.list_ids)) == sorted(lists)  # chunk 1's replay: the same list
    assert report_totals(server, api_key, lists) == 10


def test_the_cli_as_a_subprocess_survives_sigint_mid_send(
    server: LiveServer, api_key: str, proxy: Proxy, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "sig.csv", numbers(8))
    env = {**server.env, "BATGATE_URL": proxy.url, "BATGATE_API_KEY": api_key}
    command = [str(BATGATE), "send", "--csv", str(path), "--from", "Shop", "--chunk-size", "2"]
    proxy.hold_after = 2  # chunk 2 waits in the proxy while the command is interrupted
    # As a shell starts a command in the foreground: SIGINT's default action, even when
    # this test runs under a script started in the background (which ignores SIGINT).
    interruptible = ["env", "--default-signal=INT", *command]
    proc = subprocess.Popen(interruptible, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proxy.held.wait(30), "the third chunk never arrived"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 130, stderr
    assert b"interrupted" in stderr and b"run the same command again to resume" in stderr
    proxy.release.set()  # the server stores chunk 2 after all; its answer goes nowhere
    assert proxy.forwarded.wait(30)

    proxy.heal()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    records = state_records(path)
    lists = [r["messagelistId"] for r in records if r["kind"] == "done"]
    assert len(lists) == 4
    assert sorted(set(proxy.list_ids)) == sorted(lists)
    assert report_totals(server, api_key, lists) == 8
