"""SPEC §8 the operator's contract: health, API documents, `db upgrade`, `accounts create`."""

from __future__ import annotations

import base64
import json

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


def test_docs_page_is_html(fast_server):
    response = fast_server.http.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()


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
