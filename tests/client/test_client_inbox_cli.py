"""The user commands of SPEC §10 and §12 against a live `batgate serve`: `batgate inbox`,
`batgate cancel` and `batgate send --at`, through Typer's runner.

Each test has an account of its own, its inbound messages seeded through the real
store (inbox_support), so what `inbox` lists is exactly what the test put there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from client_support import LiveServer
from inbox_support import PHONE, Inbox, make_inbox
from typer.testing import CliRunner

from batgate.cli.main import app

pytestmark = pytest.mark.e2e


@pytest.fixture
def inbox(server: LiveServer) -> Inbox:
    return make_inbox(server.env["BATGATE_DATABASE_URL"])


@pytest.fixture
def cli(server: LiveServer, inbox: Inbox) -> Any:
    """`cli(*args, key=…)`: run `batgate …` in-process as the inbox's account."""
    runner = CliRunner()

    def invoke(*args: str, key: str | None = inbox.api_key) -> Any:
        env = {"BATGATE_URL": server.url, "BATGATE_API_KEY": key, "BATGATE_SENDER": None}
        return runner.invoke(app, list(args), env=env)

    return invoke


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def send(cli: Any, *options: str) -> str:
    """Send one SMS to PHONE with `options`; its message id."""
    done = cli("send", "--to", PHONE, "--text", "hello", "--from", "Shop", "--json", *options)
    assert done.exit_code == 0, done.output
    return str(json.loads(done.stdout)["messages"][0]["messageId"])


# -- inbox -------------------------------------------------------------------------------------


def test_inbox_lists_pages_and_hints_at_the_next(cli: Any, inbox: Inbox) -> None:
    sent = send(cli)
    long_text = "A much longer reply\nthat goes on about the delivery window and the weather"
    first, second = inbox.receive("Thanks! When will it arrive?", "STOP")
    (third,) = inbox.receive(long_text, parts=2, incomplete=True)

    page = cli("inbox", "--limit", "2")
    assert page.exit_code == 0, page.output
    header, *rows = page.stdout.splitlines()
    assert header.split() == ["id", "received", "(UTC)", "from", "text", "parts"]
    assert rows[0].split()[:4] == [str(first.id), *first_received(first), PHONE]
    assert "Thanks! When will it arrive?" in page.stdout and "STOP" in page.stdout
    assert f"to {inbox.number}" in page.stdout and f"↩ {sent}" in page.stdout
    assert "A much longer" not in page.stdout
    assert page.stderr.strip() == f"more: batgate inbox --after {second.id}"
    assert all(len(line) <= 80 for line in page.stdout.splitlines())

    rest = cli("inbox", "--after", str(second.id))
    assert rest.exit_code == 0 and rest.stderr == ""
    assert "A much longer reply" in rest.stdout and "goes on about…" in rest.stdout
    assert "incomplete" in rest.stdout and "STOP" not in rest.stdout

    every = cli("inbox", "--all", "--json")
    docs = [json.loads(line) for line in every.stdout.splitlines()]
    assert [d["inboundId"] for d in docs] == [first.id, second.id, third.id]
    assert docs[2] | {"receivedAt": None} == {
        "inboundId": third.id,
        "from": PHONE,
        "to": inbox.number,
        "text": long_text,
        "receivedAt": None,
        "parts": 2,
        "incomplete": True,
        "connector": "smsc-test",
        "inReplyTo": sent,
    }
    assert every.stderr == ""  # --all: no page is left

    two = cli("inbox", "--json", "--limit", "1", "--after", str(first.id))
    assert [json.loads(line)["inboundId"] for line in two.stdout.splitlines()] == [second.id]
    assert two.stderr.strip() == f"more: batgate inbox --after {second.id}"


def first_received(m: Any) -> list[str]:
    return datetime.fromtimestamp(m.received_at, UTC).strftime("%Y-%m-%d %H:%M:%S").split()


def test_an_empty_inbox_says_so(cli: Any) -> None:
    empty = cli("inbox")
    assert (empty.exit_code, empty.stdout, empty.stderr.strip()) == (0, "", "no inbound messages")
    assert cli("inbox", "--json").stdout == ""


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["inbox", "--limit", "0"], 2, "Invalid value"),
        (["inbox", "--limit", "1001"], 2, "Invalid value"),
        (["inbox", "--after", "abc"], 1, "INVALID_REQUEST"),
        (["cancel"], 2, "Missing argument"),
        (["send", "--to", PHONE, "--text", "x", "--from", "S", "--at", "tomorrow"], 2, "--at"),
        (
            ["send", "--to", PHONE, "--text", "x", "--from", "S", "--at", "2026-12-24T09:00"],
            2,
            "--at",
        ),
    ],
    ids=["limit-0", "limit-1001", "bad-cursor", "no-ids", "at-words", "at-no-offset"],
)
def test_usage_and_request_errors(cli: Any, args: list[str], code: int, text: str) -> None:
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert text in result.stderr


def test_at_goes_with_one_message_only(cli: Any, tmp_path: Any) -> None:
    path = tmp_path / "c.csv"
    path.write_text("to,text\n+380501234567,hi\n")
    result = cli("send", "--csv", str(path), "--from", "S", "--at", later(hours=1))
    assert result.exit_code == 2 and "--at and --promotional go with --to/--text" in result.stderr
    assert not (tmp_path / "c.csv.batgate-state.jsonl").exists()


def test_without_a_key_nothing_is_asked(cli: Any) -> None:
    for args in (["inbox"], ["cancel", "x"]):
        missing = cli(*args, key=None)
        assert (missing.exit_code, missing.stderr.strip()) == (
            2,
            "error: no API key: pass --api-key or set BATGATE_API_KEY",
        )


# -- send --at and cancel --------------------------------------------------------------------


def test_a_message_sent_later_is_cancelled_and_only_once(cli: Any) -> None:
    message_id = send(cli, "--at", later(hours=1), "--promotional")
    status = cli("status", message_id, "--json")
    assert json.loads(status.stdout)[0]["deliverystatus"] == "scheduled"

    cancelled = cli("cancel", message_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert message_id in cancelled.stdout and "permanenterror" in cancelled.stdout
    assert "0.00" in cancelled.stdout and cancelled.stderr == ""

    again = cli("cancel", message_id, "no-such-message")
    assert again.exit_code == 1
    assert again.stderr.count("\n") == 1
    assert again.stderr.startswith("error: 2 of 2 messages not cancelled")
    assert f"{message_id}: no longer scheduled (NOT_CANCELLABLE)" in again.stderr
    assert "no-such-message: not found (NOT_FOUND)" in again.stderr
    table = " ".join(again.stdout.split())
    assert "(409 NOT_CANCELLABLE)" in table and "(404 NOT_FOUND)" in table

    as_json = cli("cancel", message_id, "--json")
    assert as_json.exit_code == 1
    (doc,) = json.loads(as_json.stdout)
    assert (doc["messageId"], doc["error"]["code"]) == (message_id, "NOT_CANCELLABLE")


def test_cancel_answers_each_id_in_order(cli: Any) -> None:
    first, second = send(cli, "--at", later(hours=2)), send(cli, "--at", later(days=3))
    done = cli("cancel", second, first, "--json")
    assert done.exit_code == 0, done.output
    docs = json.loads(done.stdout)
    assert [(d["messageId"], d["deliverystatus"], d["cost"]) for d in docs] == [
        (second, "permanenterror", 0.0),
        (first, "permanenterror", 0.0),
    ]


def test_a_send_at_too_far_ahead_is_rejected(cli: Any) -> None:
    result = cli("send", "--to", PHONE, "--text", "x", "--from", "S", "--at", later(days=40))
    assert result.exit_code == 1
    assert "INVALID_SEND_AT" in result.stderr and "35 days" in result.stderr


def test_a_send_at_in_the_past_means_now(cli: Any) -> None:
    message_id = send(cli, "--at", later(hours=-1))
    waited = cli("wait", message_id, "--timeout", "20", "--json")
    assert waited.exit_code == 0, waited.output
    assert json.loads(waited.stdout)[0]["deliverystatus"] == "delivered"
    refused = cli("cancel", message_id)
    assert refused.exit_code == 1 and "NOT_CANCELLABLE" in refused.stderr
