"""SPEC §8 the operator's contract: health, API documents, `db upgrade`, `accounts create`."""

from __future__ import annotations

import base64
import json
import re

import pytest

from databases import raw_connection

pytestmark = pytest.mark.e2e


def test_healthz(fast_server):
    response = fast_server.http.get("/healthz")

    assert response.status_code == 200


def test_openapi_document_lists_the_smsbat_paths(fast_server):
    response = fast_server.http.get("/openapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert "openapi" in document
    assert "post" in document["paths"]["/bat/messagelist"]
    assert "get" in document["paths"]["/bat/message/{messageId}"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_work_offline(fast_server, page):
    """The pages load their scripts and styles from batgate itself, never a CDN."""
    response = fast_server.http.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    scripts = [a for a in assets if a.endswith(".js")]
    assert scripts, assets
    for asset in assets:
        loaded = fast_server.http.get(asset)
        assert loaded.status_code == 200, asset
        assert len(loaded.content) > 1000, asset
    assert "/openapi.json" in response.text


def test_db_upgrade_on_a_fresh_database(fresh_cli):
    with raw_connection(fresh_cli.database_url) as db:
        assert db.schema() == []

    first = fresh_cli("db", "upgrade")
    again = fresh_cli("db", "upgrade")

    assert first.returncode == 0 and again.returncode == 0
    with raw_connection(fresh_cli.database_url) as db:
        tables = {table for table, _, _ in db.schema()}
    assert {"accounts", "messages", "message_events", "alembic_version"} <= tables


def test_accounts_create_prints_one_json_object(fresh_cli):
    done = fresh_cli("accounts", "create", "shop", "--password", "pw")

    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    created = json.loads(lines[0])
    assert set(created) == {"username", "apiKey", "webhookSecret"}
    assert created["username"] == "shop"
    assert isinstance(created["apiKey"], str) and len(created["apiKey"]) >= 20
    secret = created["webhookSecret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    assert created["apiKey"] not in done.stderr


def test_accounts_create_twice_fails_without_printing_a_key(fresh_cli):
    first = fresh_cli("accounts", "create", "twice")
    second = fresh_cli("accounts", "create", "twice", check=False)

    assert second.returncode != 0
    assert second.stdout.strip() == ""
    assert json.loads(first.stdout)["apiKey"]


def test_created_keys_are_distinct_and_work(fast_server):
    one = fast_server.create_account("keys")
    two = fast_server.create_account("keys")

    assert one.api_key != two.api_key
    assert one.webhook_secret != two.webhook_secret
    for account in (one, two):
        response = fast_server.http.get("/bat/message/nothing-here", headers=account.headers)
        fast_server.assert_error(response, 404, "NOT_FOUND")


# -- `serve --demo`: the README tour's account ---------------------------------------------


def _demo_credentials(server) -> tuple[str, str]:
    """The API key and password `serve --demo` printed (its `export KEY=… PASSWORD=…`)."""
    log = (server.workdir / "server-1.log").read_text()
    found = re.search(r"export KEY='([^']+)' PASSWORD='([^']+)'", log)
    assert found, log
    return found.group(1), found.group(2)


def _status_codes(server, key: str, password: str) -> list[int]:
    """GET /bat/message/{unknown} with each of the three logins: 404 means logged in."""
    basic = [("demo", password), ("@", key)]
    answers = [server.http.get("/bat/message/none", headers={"X-Authorization-Key": key})]
    answers += [server.http.get("/bat/message/none", auth=auth) for auth in basic]
    return [a.status_code for a in answers]


def test_the_demo_account_keeps_its_credentials_across_restarts(start_server, tmp_path):
    first = start_server(tmp_path, {}, None, "--demo")
    key, password = _demo_credentials(first)
    assert _status_codes(first, key, password) == [404, 404, 404]
    saved = tmp_path / "batgate.demo.json"
    assert saved.stat().st_mode & 0o077 == 0  # the owner's alone
    assert json.loads(saved.read_text()) == {
        "username": "demo",
        "apiKey": key,
        "password": password,
    }
    first.proc.terminate()
    first.proc.wait(10)

    again = start_server(tmp_path, {}, None, "--demo")
    assert _demo_credentials(again) == (key, password)
    assert _status_codes(again, key, password) == [404, 404, 404]
    again.proc.terminate()
    again.proc.wait(10)

    renewed = start_server(tmp_path, {}, None, "--demo", "--new-demo-key")
    new_key, new_password = _demo_credentials(renewed)
    assert new_key != key and new_password != password
    assert _status_codes(renewed, new_key, new_password) == [404, 404, 404]
    assert _status_codes(renewed, key, password) == [401, 401, 401]


def test_new_demo_key_without_demo_is_a_usage_error(fresh_cli):
    done = fresh_cli("serve", "--new-demo-key", check=False)

    assert done.returncode == 2
    assert "--new-demo-key goes with --demo" in done.stderr


# -- `batgate messages show`: why a message ended as it did --------------------------------

WHY = [
    # (id, the message, its final status, what its story must say)
    ("delivered", {"to": "+380501234567"}, "delivered", ["processing", "delivered"]),
    (
        "the carrier's receipt",
        {"to": "+380501230001"},
        "undeliverable",
        ["the carrier's receipt: undeliverable"],
    ),
    (
        "retries ran out",
        {"to": "+380501230002"},
        "permanenterror",
        ["attempt 1 failed: ", "attempt 3 failed: ", "no retries left"],
    ),
    (
        "a step refused, then the fallback",
        {"to": "+380501230003", "type": "viber_promo", "fallback": {"type": "sms", "text": "Hi"}},
        "delivered",
        ["viber 0 the carrier's receipt: undeliverable", "sms 1"],
    ),
    (
        "no receipt within the TTL",
        {"to": "+380501230005", "ttl": 2},
        "undeliverable",
        ["no receipt from the carrier within the TTL (2 s)"],
    ),
]


@pytest.mark.parametrize(
    ("message", "final", "said"), [w[1:] for w in WHY], ids=[w[0] for w in WHY]
)
def test_messages_show_says_why(fast_server, alice, message, final, said):
    sent = {"from": "batgate", "type": "sms", "text": "Hello", **message}
    mid = fast_server.send_one(alice, sent)["messageId"]
    assert fast_server.wait_final(alice, mid).final["deliverystatus"] == final

    shown = json.loads(fast_server.cli("messages", "show", mid, "--json").stdout)
    assert shown["status"] == fast_server.status(alice, mid)  # the document the API answers
    story = shown["story"]
    assert story[-1]["status"] == final
    told = " | ".join(
        f"{line['channel']} {line['step']} {line['reason']}"
        if "channel" in line
        else f"{line['status']} {line['reason'] or ''}"
        for line in story
    )
    for words in said:
        assert words in told, told
    text = fast_server.cli("messages", "show", mid).stdout  # the table for people
    assert mid in text and "story" in text and final in text
    if final != "delivered":
        assert story[-1]["reason"], story  # a final failure says why


def test_an_accounts_own_rate_limit_from_the_cli(fresh_cli):
    fresh_cli("accounts", "create", "erin")
    own = json.loads(fresh_cli("accounts", "set-rate-limit", "erin", "5", "--burst", "10").stdout)
    assert own == {"username": "erin", "rateLimit": 5.0, "rateBurst": 10}
    listed = json.loads(fresh_cli("accounts", "list", "--json").stdout.splitlines()[0])
    assert (listed["rateLimit"], listed["rateBurst"]) == (5.0, 10)
    back = json.loads(fresh_cli("accounts", "set-rate-limit", "erin", "--default").stdout)
    assert (back["rateLimit"], back["rateBurst"]) == (None, None)
    for args in (["0"], ["5", "--default"], [], ["5", "--burst", "0"]):
        refused = fresh_cli("accounts", "set-rate-limit", "erin", *args, check=False)
        assert refused.returncode == 1, args
