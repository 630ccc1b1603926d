"""SPEC §6 rate limiting: per account, 429 RATE_LIMITED with Retry-After in seconds.

The server here allows one request every 4 s with bursts of 3 (see the `limited_server` fixture).
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

SMS = {"from": "batgate", "to": "+380501234567", "type": "sms", "text": "Hello"}


@pytest.fixture(scope="module")
def accounts(limited_server):
    return limited_server.create_account("busy"), limited_server.create_account("calm")


def _send(server, account):
    return server.http.post("/bat/messagelist", json=[SMS], headers=account.headers)


def test_fourth_rapid_request_is_429_and_others_are_unaffected(limited_server, accounts):
    busy, calm = accounts

    first = [_send(limited_server, busy) for _ in range(3)]
    fourth = _send(limited_server, busy)
    status = limited_server.http.get(
        f"/bat/message/{first[0].json()['messages'][0]['messageId']}", headers=busy.headers
    )

    assert [r.status_code for r in first] == [200, 200, 200]
    limited_server.assert_error(fourth, 429, "RATE_LIMITED")
    retry_after = fourth.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    # The status endpoint is limited by the same per-account bucket.
    limited_server.assert_error(status, 429, "RATE_LIMITED")
    assert status.headers["retry-after"].isdigit()

    # Another account has its own bucket.
    assert [_send(limited_server, calm).status_code for _ in range(3)] == [200, 200, 200]

    # After Retry-After seconds the busy account may send again.
    time.sleep(int(retry_after))
    assert _send(limited_server, busy).status_code == 200


def test_the_limit_is_per_account_whatever_the_credentials(limited_server):
    shared = limited_server.create_account("shared", password="pw-shared")
    ways = [
        {"headers": shared.headers},
        {"auth": (shared.username, "pw-shared")},
        {"auth": ("@", shared.api_key)},
        {"headers": shared.headers},
    ]

    answers = [limited_server.http.post("/bat/messagelist", json=[SMS], **way) for way in ways]

    assert [r.status_code for r in answers[:3]] == [200, 200, 200]
    limited_server.assert_error(answers[3], 429, "RATE_LIMITED")


def test_two_api_processes_share_one_limit(limited_server, start_server, tmp_path):
    """A second `batgate serve --no-workers` on the same database draws on the same bucket."""
    account = limited_server.create_account("twoproc")
    settings = {k: v for k, v in limited_server.env.items() if k.startswith("BATGATE_")}
    database = settings.pop("BATGATE_DATABASE_URL")
    second = start_server(tmp_path, settings, database, "--no-workers")
    started = time.monotonic()
    codes = [_send(server, account).status_code for server in [limited_server, second] * 4]
    elapsed = time.monotonic() - started

    assert set(codes) <= {200, 429}
    # Bursts of 3 plus one per 4 s for the time the eight requests took, across both.
    most = 3 + int(elapsed / 4) + 1
    assert 3 <= codes.count(200) <= most, (codes, elapsed)
