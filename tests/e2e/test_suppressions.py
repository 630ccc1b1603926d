"""SPEC §11 against a real `batgate serve`: the suppression list by API and by CLI, and
the send answer's OPTED_OUT (the rest of the batch going ahead and being delivered)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from waiting import wait_until

if TYPE_CHECKING:
    from conftest import Account, Server

pytestmark = pytest.mark.e2e

A, B, C = "+380501234567", "+380671234567", "+447911123456"


def sms(to: str) -> dict[str, Any]:
    return {"from": "Shop", "to": to, "type": "sms", "text": "hello"}


def outcomes(server: Server, account: Account, *numbers: str) -> list[str]:
    """Each message's status in the send answer, or its error code when rejected."""
    answer = server.send(account, [sms(n) for n in numbers])
    return [
        m["error"]["code"] if m["status"] == "rejected" else m["status"] for m in answer["messages"]
    ]


def test_an_opted_out_number_is_rejected_until_it_is_removed(fast_server: Server) -> None:
    account = fast_server.create_account("optout")
    added = fast_server.http.post(
        "/bat/suppressions", json={"numbers": [B]}, headers=account.headers
    )
    assert added.status_code == 200, added.text
    assert added.json()["added"] == 1

    answer = fast_server.send(account, [sms(A), sms(B), sms(C)])
    first, opted_out, third = answer["messages"]
    assert opted_out["status"] == "rejected" and opted_out["messageId"] is None
    assert opted_out["error"]["code"] == "OPTED_OUT" and opted_out["to"] == B
    traces = fast_server.wait_all(account, [first["messageId"], third["messageId"]], 30)
    assert {t.final["deliverystatus"] for t in traces.values()} == {"delivered"}

    removed = fast_server.http.delete(f"/bat/suppressions/{B}", headers=account.headers)
    assert removed.status_code == 200, removed.text
    assert removed.json()["number"] == B
    assert outcomes(fast_server, account, B) == ["accepted"]
    again = fast_server.http.delete(f"/bat/suppressions/{B}", headers=account.headers)
    fast_server.assert_error(again, 404, "NOT_FOUND")


def test_a_malformed_number_refuses_the_whole_request(fast_server: Server) -> None:
    account = fast_server.create_account("optout")
    response = fast_server.http.post(
        "/bat/suppressions", json={"numbers": [A, "050 123 45 67"]}, headers=account.headers
    )
    body = fast_server.assert_error(response, 422, "INVALID_REQUEST")
    assert "numbers[1]: '050 123 45 67'" in body["error"]["message"]
    listed = fast_server.http.get("/bat/suppressions", headers=account.headers)
    assert listed.json() == {"suppressions": [], "nextCursor": None}


def test_a_csv_import_skips_its_bad_rows_and_suppresses_the_rest(
    fast_server: Server, tmp_path: Path
) -> None:
    account = fast_server.create_account("optout")
    file = tmp_path / "opt-outs.csv"
    file.write_text(f"phone,name\n{A},Ann\n0501234567,Bob\n\n{C},Cy\n", encoding="utf-8-sig")

    done = fast_server.cli("suppressions", "import", account.username, str(file), check=False)

    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["rows"], report["added"], report["alreadyListed"]) == (3, 2, 0)
    assert [(r["line"], r["value"]) for r in report["badRows"]] == [(3, "0501234567")]
    assert "opt-outs.csv, line 3: '0501234567' is not an E.164 number" in done.stderr
    listed = fast_server.http.get("/bat/suppressions", headers=account.headers).json()
    assert [(e["number"], e["source"]) for e in listed["suppressions"]] == [
        (A, "import"),
        (C, "import"),
    ]
    assert outcomes(fast_server, account, A, B, C) == ["OPTED_OUT", "accepted", "OPTED_OUT"]


def test_the_cli_adds_lists_exports_and_removes(fast_server: Server) -> None:
    account = fast_server.create_account("optout")
    user = account.username

    added = json.loads(fast_server.cli("suppressions", "add", user, C, A).stdout)
    assert added == {"username": user, "added": 2, "alreadyListed": 0}
    lines = fast_server.cli("suppressions", "list", user, "--json").stdout.splitlines()
    assert [json.loads(line)["number"] for line in lines] == [A, C]
    exported = list(csv.reader(io.StringIO(fast_server.cli("suppressions", "export", user).stdout)))
    assert exported[0] == ["number", "source", "createdAt"]
    assert [row[:2] for row in exported[1:]] == [[A, "cli"], [C, "cli"]]

    removed = json.loads(fast_server.cli("suppressions", "remove", user, A).stdout)
    assert removed["removed"]["number"] == A
    missing = fast_server.cli("suppressions", "remove", user, A, check=False)
    assert missing.returncode == 1 and "not on" in missing.stderr
    unknown = fast_server.cli("suppressions", "list", "nobody-here", check=False)
    assert unknown.returncode == 1 and "no account named 'nobody-here'" in unknown.stderr


def test_a_cli_addition_counts_in_the_running_server(fast_server: Server) -> None:
    """The server already knows this account has no list (it just sent for it): another
    process's first suppression counts within `suppression_cache_seconds` (1 s)."""
    account = fast_server.create_account("optout")
    assert outcomes(fast_server, account, A) == ["accepted"]

    fast_server.cli("suppressions", "add", account.username, A)

    wait_until(
        lambda: outcomes(fast_server, account, A), lambda o: o == ["OPTED_OUT"], "OPTED_OUT", 10
    )
