"""SPEC §1 authentication, driven with the curl commands of the seed page."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

CURL = shutil.which("curl")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CURL is None, reason="curl is not installed"),
]

REALM = 'Basic realm="batgate"'
SMS = {"from": "batgate", "to": "+380501234567", "type": "sms", "text": "Hello"}


def curl(*args: str) -> tuple[int, dict[str, str], bytes]:
    """Run curl; the status code, the headers (lower-case names) and the body."""
    assert CURL is not None
    done = subprocess.run(
        [CURL, "-sS", "-i", "--max-time", "20", *args],
        capture_output=True,
        timeout=30,
        check=True,
    )
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


@pytest.fixture(scope="module")
def message_id(fast_server, alice):
    return fast_server.send_one(alice, SMS)["messageId"]


def _methods(account):
    return {
        "api-key-header": ["-H", f"X-Authorization-Key: {account.api_key}"],
        "basic-username-password": ["-u", f"{account.username}:{account.password}"],
        "basic-at-apikey": ["-u", f"@:{account.api_key}"],
    }


@pytest.mark.parametrize("method", ["api-key-header", "basic-username-password", "basic-at-apikey"])
def test_status_with_each_auth_method(fast_server, alice, message_id, method):
    status, _, body = curl(
        "-X", "GET", f"{fast_server.base_url}/bat/message/{message_id}", *_methods(alice)[method]
    )

    assert status == 200, body
    doc = json.loads(body)
    assert doc["messageId"] == message_id
    assert doc["deliverystatus"] in {"scheduled", "processing", "delivered"}


@pytest.mark.parametrize("method", ["api-key-header", "basic-username-password", "basic-at-apikey"])
def test_send_with_each_auth_method(fast_server, alice, method):
    status, _, body = curl(
        f"{fast_server.base_url}/bat/messagelist",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps({"messages": [SMS]}),
        *_methods(alice)[method],
    )

    assert status == 200, body
    assert json.loads(body)["messages"][0]["status"] == "accepted"


BAD_CREDENTIALS = [
    pytest.param(lambda a: ["-H", "X-Authorization-Key: not-a-key"], id="wrong-api-key"),
    pytest.param(lambda a: ["-H", "X-Authorization-Key: " + a.api_key[:-1]], id="key-prefix"),
    pytest.param(lambda a: ["-u", f"{a.username}:wrong-password"], id="wrong-password"),
    pytest.param(lambda a: ["-u", f"{a.username}:"], id="empty-password"),
    pytest.param(lambda a: ["-u", f"nosuchuser:{a.password}"], id="unknown-username"),
    pytest.param(lambda a: ["-u", "@:not-a-key"], id="wrong-key-as-password"),
    pytest.param(lambda a: ["-u", f"{a.username}:{a.api_key}"], id="key-as-password-no-at"),
    pytest.param(lambda a: [], id="no-credentials"),
    pytest.param(lambda a: ["-H", "Authorization: Basic !!!notbase64"], id="malformed-basic"),
    pytest.param(lambda a: ["-H", f"Authorization: Bearer {a.api_key}"], id="bearer-scheme"),
]


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
@pytest.mark.parametrize("endpoint", ["status", "send"])
def test_bad_credentials_are_401(fast_server, alice, message_id, credentials, endpoint):
    if endpoint == "status":
        args = [f"{fast_server.base_url}/bat/message/{message_id}"]
    else:
        args = [f"{fast_server.base_url}/bat/messagelist", "-d", json.dumps([SMS])]

    status, headers, body = curl(*args, *credentials(alice))

    assert status == 401, body
    assert headers.get("www-authenticate") == REALM
    assert headers.get("content-type", "").startswith("application/json")
    doc = json.loads(body)
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message"}
    assert doc["error"]["code"] == "UNAUTHORIZED"


def test_disabled_account_is_401_and_enabled_again_works(fast_server):
    carol = fast_server.create_account("carol", password="carol-pw")
    url = f"{fast_server.base_url}/bat/messagelist"
    body = json.dumps([SMS])
    assert curl(url, "-d", body, *_methods(carol)["api-key-header"])[0] == 200

    fast_server.cli("accounts", "disable", carol.username)

    # The server caches verified credentials for auth_cache_seconds (0.5 s here).
    for method in ("api-key-header", "basic-username-password", "basic-at-apikey"):
        status, headers = _poll_status(url, body, _methods(carol)[method], until=401)
        assert status == 401, method
        assert headers.get("www-authenticate") == REALM

    fast_server.cli("accounts", "enable", carol.username)
    status, _ = _poll_status(url, body, _methods(carol)["api-key-header"], until=200)
    assert status == 200


def _poll_status(url, body, credentials, until, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        status, headers, _ = curl(url, "-d", body, *credentials)
        if status == until or time.monotonic() > deadline:
            return status, headers
        time.sleep(0.1)


# -- failed logins cost the caller, not the gateway ------------------------------------------

THROTTLED = {
    "BATGATE_AUTH__FAILURES_PER_USERNAME": "3",
    "BATGATE_AUTH__FAILURES_PER_ADDRESS": "6",
    "BATGATE_AUTH__FAILURE_WINDOW": "600",  # no token comes back during the test
    "BATGATE_LOG_FORMAT": "json",
}


def _metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{want}}} in /metrics")


def test_failed_logins_are_throttled_per_username_and_per_address(start_server, tmp_path):
    server = start_server(tmp_path, THROTTLED)
    shop = server.create_account("shop", password="right-Pa55")
    url = f"{server.base_url}/bat/message/none"

    wrong = [curl(url, "-u", "shop1:wrong-guess")[0] for _ in range(3)]
    assert wrong == [401, 401, 401]
    # The username waits now, even with the right password: nothing is checked.
    status, headers, body = curl(url, "-u", "shop1:right-Pa55")
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert json.loads(body)["error"]["code"] == "RATE_LIMITED"
    assert "username" in json.loads(body)["error"]["message"]
    # Only the username waits: the account's API key passes from this address.
    assert curl(url, "-H", f"X-Authorization-Key: {shop.api_key}")[0] == 404

    others = [curl(url, "-u", f"nobody{n}:x")[0] for n in range(3)]  # the 6th failure
    assert others == [401, 401, 401]
    status, headers, body = curl(url, "-u", "somebody:x")
    assert status == 429 and "address" in json.loads(body)["error"]["message"]
    status, _, _ = curl(url, "-H", "X-Authorization-Key: a-key-never-seen")
    assert status == 429  # uncached credentials from this address: nothing is checked
    # A key verified a moment ago is in the cache: proven, it still passes.
    assert curl(url, "-H", f"X-Authorization-Key: {shop.api_key}")[0] == 404

    metrics = server.http.get("/metrics").text
    assert _metric(metrics, "batgate_auth_failures_total", method="password") == 6
    assert _metric(metrics, "batgate_auth_throttled_total", scope="username") == 1
    assert _metric(metrics, "batgate_auth_throttled_total", scope="address") == 2
    assert server.proc is not None
    server.proc.terminate()
    server.proc.wait(10)
    log = (tmp_path / "server-1.log").read_text()
    failures = [json.loads(line) for line in log.splitlines() if "failed login" in line]
    assert len(failures) == 6
    assert all("127.0.0.1" in f["message"] for f in failures)
    assert "'shop1'" in failures[0]["message"] and "wrong-guess" not in log
