"""SPEC §4 webhooks, end to end: `batgate serve` POSTs to a receiver in another process.

The receiver (receiver.py) logs every request with its headers, body and answer,
and can fail attempts, answer 410 or 429, hang, or be down altogether. Retry
schedules, leases and timeouts come from `BATGATE_WEBHOOKS__*` settings, so the
long-retry behaviour takes seconds here, not hours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import standardwebhooks

from batgate.webhooks import WebhookVerificationError, sign, verify
from databases import raw_connection
from waiting import wait_until

if TYPE_CHECKING:
    from conftest import Account, Hook, Receiver, Server

    StartServer = Callable[[Path, Mapping[str, str]], Server]
    MakeReceiver = Callable[..., Receiver]

pytestmark = pytest.mark.e2e

NORMAL = "+380501234567"
UNDELIVERABLE = "+380501230001"
TRANSIENT = "+380501230002"
NO_VIBER = "+380501230003"
FINAL = frozenset({"delivered", "undeliverable", "permanenterror"})

RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
BASE_FIELDS = {
    "messageId",
    "deliverystatus",
    "timestamp",
    "messagelistId",
    "customerMessageId",
    "partscount",
}


# -- helpers ------------------------------------------------------------------------


def sms(to: str = NORMAL, **extra: Any) -> dict[str, Any]:
    return {"from": "batgate", "to": to, "type": "sms", "text": "Your code is 1234", **extra}


def evt(message_id: str, status: str) -> str:
    return f"evt_{message_id}_{status}"


def acked_ids(hooks: list[Hook]) -> set[str]:
    return {h.webhook_id for h in hooks if h.acked}


def wait_acked(
    receiver: Receiver, ids: set[str], timeout: float = 30.0, path: str | None = None
) -> list[Hook]:
    """Wait until every event in `ids` was acknowledged (2xx) once; all hooks then."""
    return receiver.wait(
        lambda hooks: ids <= acked_ids(hooks),
        timeout,
        f"{len(ids)} events to be acknowledged",
        path,
    )


def first_arrivals(hooks: list[Hook]) -> list[Hook]:
    """Each event once (by webhook-id), at its first arrival."""
    seen: dict[str, Hook] = {}
    for hook in hooks:
        seen.setdefault(hook.webhook_id, hook)
    return list(seen.values())


def assert_ordered(hooks: list[Hook], expected: Mapping[str, list[str]]) -> None:
    """Per message exactly the `expected` events, in order, nothing else.

    Deduplicated by webhook-id; and no event's first attempt came before the
    previous event of its message had been acknowledged.
    """
    first_seen: dict[str, int] = {}
    first_ack: dict[str, int] = {}
    for i, hook in enumerate(hooks):
        payload = hook.payload
        assert hook.webhook_id == evt(payload["messageId"], payload["deliverystatus"]), hook
        first_seen.setdefault(hook.webhook_id, i)
        if hook.acked:
            first_ack.setdefault(hook.webhook_id, i)
    got: dict[str, list[str]] = defaultdict(list)
    for hook in first_arrivals(hooks):
        got[hook.payload["messageId"]].append(hook.payload["deliverystatus"])
    unexpected = sorted(set(got) - set(expected))
    assert not unexpected, f"events of unexpected messages: {unexpected[:5]}"
    wrong = {mid: got.get(mid) for mid, want in expected.items() if got.get(mid) != want}
    assert not wrong, f"{len(wrong)} messages with wrong events, e.g. {list(wrong.items())[:5]}"
    for mid, statuses in expected.items():
        for before, after in pairwise(statuses):
            assert first_ack[evt(mid, before)] < first_seen[evt(mid, after)], (
                f"{mid}: {after} was sent before {before} was acknowledged"
            )


def assert_verifies(hook: Hook, secret: str) -> None:
    """Both the standardwebhooks package and batgate.webhooks accept the request."""
    expected = json.loads(hook.body)
    assert standardwebhooks.Webhook(secret).verify(hook.body, hook.headers) == expected
    assert verify(hook.body, hook.headers, secret) == expected


def assert_rejected(body: bytes, headers: dict[str, str], secret: str) -> None:
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, secret)


def signatures(hook: Hook) -> list[str]:
    return hook.headers["webhook-signature"].split(" ")


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def webhook_events(server: Server, account: Account, *extra: str) -> list[dict[str, Any]]:
    """`batgate webhooks list --account NAME --json` (oldest first)."""
    args = ["webhooks", "list", "--account", account.username, "--json", "--limit", "100000"]
    return json_lines(server.cli(*args, *extra).stdout)[::-1]


def account_info(server: Server, username: str) -> dict[str, Any]:
    found = json_lines(server.cli("accounts", "list", "--json").stdout)
    [info] = [a for a in found if a["username"] == username]
    return info


def wait_list_final(
    server: Server, account: Account, list_id: int, total: int, timeout: float
) -> dict[str, Any]:
    """Poll GET /bat/messagelist/{id} until all `total` messages are final."""
    deadline = time.monotonic() + timeout
    while True:
        response = server.http.get(f"/bat/messagelist/{list_id}", headers=account.headers)
        assert response.status_code == 200, response.text
        summary = dict(response.json())
        if summary["total"] == total and sum(summary["counts"][s] for s in FINAL) == total:
            return summary
        assert time.monotonic() < deadline, f"list {list_id} not final in {timeout} s: {summary}"
        time.sleep(0.2)


def attempts_stored(server: Server) -> dict[int, list[tuple[Any, ...]]]:
    """The `webhook_attempts` rows per event id, read straight from the database."""
    with raw_connection(server.env["BATGATE_DATABASE_URL"]) as db:
        rows = db.execute(
            "SELECT event_id, status_code, error FROM webhook_attempts ORDER BY id"
        ).fetchall()
    found: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for event_id, status_code, error in rows:
        found[event_id].append((status_code, error))
    return found


def attempt_spans(server: Server, url: str) -> list[tuple[float, float]]:
    """(start, end) of every finished attempt to `url`, from the gateway's own record."""
    with raw_connection(server.env["BATGATE_DATABASE_URL"]) as db:
        rows = db.execute(
            "SELECT a.at, a.duration_ms FROM webhook_attempts a"
            " JOIN message_events e ON e.id = a.event_id"
            " JOIN accounts c ON c.id = e.account_id WHERE c.webhook_url = ?",
            (url,),
        ).fetchall()
    return [(at, at + ms / 1000) for at, ms in rows]


def most_in_flight(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = now = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return most


def create_hooked(server: Server, prefix: str, url: str) -> Account:
    return server.create_account(prefix, webhook_url=url)


# -- 1. signatures --------------------------------------------------------------------


def test_signatures_verify_with_the_printed_secret(
    webhook_server: Server, receiver: Receiver
) -> None:
    # create_account runs `batgate accounts create NAME --webhook-url URL` and keeps
    # the webhookSecret it printed.
    account = webhook_server.create_account("signed", webhook_url=receiver.url())
    secret = account.webhook_secret
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    mid = webhook_server.send_one(account, sms(customerMessageId="sig-1"))["messageId"]

    hooks = wait_acked(receiver, {evt(mid, "processing"), evt(mid, "delivered")})
    assert len(hooks) == 2, hooks
    key = base64.b64decode(secret.removeprefix("whsec_"))
    for hook in hooks:
        assert_verifies(hook, secret)
        # The scheme by hand: v1, + base64 HMAC-SHA256 of id.timestamp.body, one signature.
        signed = f"{hook.webhook_id}.{hook.headers['webhook-timestamp']}.".encode() + hook.body
        mac = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert hook.headers["webhook-signature"] == f"v1,{mac}"

        tampered = hook.body.replace(b'"sig-1"', b'"sig-2"')
        assert tampered != hook.body
        assert_rejected(tampered, hook.headers, secret)
        assert_rejected(hook.body + b" ", hook.headers, secret)
        assert_rejected(hook.body, {**hook.headers, "webhook-id": "evt_other"}, secret)
        stamp = str(int(hook.headers["webhook-timestamp"]) + 1)
        assert_rejected(hook.body, {**hook.headers, "webhook-timestamp": stamp}, secret)
        other = webhook_server.create_account("unsigned")
        assert_rejected(hook.body, hook.headers, other.webhook_secret)

    # batgate.webhooks.verify also refuses a correctly signed but stale request (replay).
    stale = int(time.time()) - 600
    body = hooks[0].body
    headers = {
        "webhook-id": hooks[0].webhook_id,
        "webhook-timestamp": str(stale),
        "webhook-signature": sign(secret, hooks[0].webhook_id, stale, body),
    }
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(body, headers, secret)


# -- 2. retries keep the webhook-id ---------------------------------------------------


def test_failed_attempts_are_retried_with_the_same_webhook_id(
    webhook_server: Server, receiver: Receiver
) -> None:
    failures = 3
    receiver.set_rules({"/hook": {"fail_first": failures, "fail_status": 500}})
    account = create_hooked(webhook_server, "flaky", receiver.url())
    answer = webhook_server.send(account, [sms(customerMessageId=f"retry-{i}") for i in range(3)])
    mids = [m["messageId"] for m in answer["messages"]]
    ids = {evt(mid, s) for mid in mids for s in ("processing", "delivered")}

    hooks = wait_acked(receiver, ids, timeout=20)
    assert_ordered(hooks, {mid: ["processing", "delivered"] for mid in mids})
    by_event: dict[tuple[str, str], list[Hook]] = defaultdict(list)
    for hook in hooks:
        by_event[hook.payload["messageId"], hook.payload["deliverystatus"]].append(hook)
    assert len(by_event) == len(ids)
    for (mid, status), attempts in by_event.items():
        assert [h.answer for h in attempts] == [500] * failures + [200], (mid, status)
        assert {h.webhook_id for h in attempts} == {evt(mid, status)}
        assert {h.body for h in attempts} == {attempts[0].body}
        for hook in attempts:
            assert_verifies(hook, account.webhook_secret)
        gaps = [b.t - a.t for a, b in pairwise(attempts)]
        assert min(gaps) > 0.1, gaps  # the schedule's ~0.2 s waits, not a tight loop

    # Every attempt is counted, and stored.
    events = webhook_events(webhook_server, account)
    assert {e["webhookId"] for e in events} == ids
    for event in events:
        assert (event["state"], event["attempts"], event["lastStatus"]) == (
            "delivered",
            failures + 1,
            200,
        ), event
    stored = attempts_stored(webhook_server)
    for event in events:
        codes = [code for code, _ in stored[event["id"]]]
        assert codes == [500] * failures + [200], event


# -- 3. a receiver down while 1,000 messages finish ----------------------------------


def test_a_receiver_down_for_1000_final_statuses_gets_every_event_in_order(
    tmp_path: Path, start_webhook_server: StartServer, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver(start=False)  # down: nothing listens on its port
    server = start_webhook_server(
        tmp_path / "gateway",
        {
            "BATGATE_WEBHOOKS__RETRY_DELAYS": "[0.5]",
            "BATGATE_WEBHOOKS__REPEAT_EVERY": "0.5",
            "BATGATE_WEBHOOKS__GIVE_UP_AFTER": "3600",
        },
    )
    account = create_hooked(server, "bulk", receiver.url())
    answer = server.send(account, [sms(customerMessageId=f"bulk-{i}") for i in range(1000)])
    mids = [m["messageId"] for m in answer["messages"]]
    assert len(set(mids)) == 1000 and None not in mids
    summary = wait_list_final(server, account, answer["messagelistId"], 1000, timeout=60)
    assert summary["counts"]["delivered"] == 1000, summary
    assert receiver.hooks() == []

    events = webhook_events(server, account)
    assert len(events) == 2000
    assert {e["state"] for e in events} == {"pending"}
    # Tried and refused (connection errors); the final events wait behind them, untried.
    tried = [e for e in events if e["attempts"] >= 1]
    assert tried and all(e["deliverystatus"] == "processing" and e["lastError"] for e in tried)

    receiver.start()
    ids = {evt(mid, s) for mid in mids for s in ("processing", "delivered")}
    hooks = wait_acked(receiver, ids, timeout=60)
    assert_ordered(hooks, {mid: ["processing", "delivered"] for mid in mids})
    for hook in first_arrivals(hooks)[:: len(ids) // 20]:  # a sample: signed right
        assert_verifies(hook, account.webhook_secret)


# -- 4. kill -9 between the status change and the delivery ---------------------------


def test_sigkill_between_status_change_and_delivery_loses_no_event(
    tmp_path: Path, start_webhook_server: StartServer, make_receiver: MakeReceiver
) -> None:
    settings = {
        "BATGATE_SANDBOX__DELIVERY_DELAY": "1.0",
        "BATGATE_WEBHOOKS__RETRY_DELAYS": "[0.3]",
        "BATGATE_WEBHOOKS__REPEAT_EVERY": "0.3",
        "BATGATE_WEBHOOKS__GIVE_UP_AFTER": "3600",
        "BATGATE_WEBHOOKS__TIMEOUT": "2",
        "BATGATE_WEBHOOKS__LEASE_SECONDS": "3",
        "BATGATE_DISPATCHER__LEASE_SECONDS": "1",
    }
    workdir = tmp_path / "gateway"
    receiver = make_receiver(start=False)
    first = start_webhook_server(workdir, settings)
    account = create_hooked(first, "crash", receiver.url())
    done = first.send(account, [sms(customerMessageId=f"done-{i}") for i in range(100)])
    wait_list_final(first, account, done["messagelistId"], 100, timeout=30)
    pending = webhook_events(first, account)
    assert len(pending) == 200 and {e["state"] for e in pending} == {"pending"}

    # Let some events be claimed and in flight (the receiver holds them), send
    # more messages so that some are between statuses, then kill -9.
    receiver.start({"/hook": {"hang": 60}})
    receiver.wait(lambda hooks: len(hooks) >= 2, 30, "requests in flight")
    later = first.send(account, [sms(customerMessageId=f"late-{i}") for i in range(50)])
    assert first.proc is not None
    os.kill(first.proc.pid, signal.SIGKILL)
    assert first.proc.wait(timeout=10) == -signal.SIGKILL
    in_flight = receiver.hooks()
    assert in_flight and all(h.answer == "hang" for h in in_flight)
    receiver.stop()
    receiver.start({})

    second = start_webhook_server(workdir, settings)
    wait_list_final(second, account, later["messagelistId"], 50, timeout=30)
    mids = [m["messageId"] for m in done["messages"] + later["messages"]]
    ids = {evt(mid, s) for mid in mids for s in ("processing", "delivered")}
    hooks = wait_acked(receiver, ids, timeout=40)
    assert_ordered(hooks, {mid: ["processing", "delivered"] for mid in mids})
    events = webhook_events(second, account)
    assert len(events) == 300 and {e["state"] for e in events} == {"delivered"}


# -- 5. secret rotation -------------------------------------------------------------


def test_rotated_secret_overlaps_old_and_new_both_verify(
    webhook_server: Server, receiver: Receiver
) -> None:
    account = create_hooked(webhook_server, "rotor", receiver.url())
    old = account.webhook_secret
    before = webhook_server.send_one(account, sms())["messageId"]
    for hook in wait_acked(receiver, {evt(before, "processing"), evt(before, "delivered")}):
        assert len(signatures(hook)) == 1
        assert_verifies(hook, old)

    rotated = json.loads(
        webhook_server.cli("accounts", "rotate-webhook-secret", account.username).stdout
    )
    assert set(rotated) == {"username", "webhookSecret"}
    assert rotated["username"] == account.username
    new = rotated["webhookSecret"]
    assert new.startswith("whsec_") and new != old
    rotated_at = time.monotonic()

    # The gateway caches accounts for a few seconds: send until the new secret signs,
    # then a few more. Every event in the overlap verifies with the old secret.
    after: list[Hook] = []
    dual: list[Hook] = []
    while len(dual) < 6:
        assert time.monotonic() - rotated_at < 15, "the new secret never signed"
        mid = webhook_server.send_one(account, sms())["messageId"]
        ids = {evt(mid, "processing"), evt(mid, "delivered")}
        got = [h for h in wait_acked(receiver, ids) if h.webhook_id in ids]
        after += got
        if dual or any(len(signatures(h)) == 2 for h in got):
            dual += got
    for hook in after:
        assert_verifies(hook, old)
    for hook in dual[-4:]:  # two messages sent after the first dual-signed event
        first, second = signatures(hook)
        assert first != second
        assert_verifies(hook, new)
        assert_verifies(hook, old)
        # Each signature on its own: one is the new secret's, the other the old one's.
        alone = [{**hook.headers, "webhook-signature": s} for s in (first, second)]
        verifying = {
            secret: [_verifies(hook.body, h, secret) for h in alone] for secret in (old, new)
        }
        assert sorted(verifying.values()) == [[False, True], [True, False]], verifying


def test_the_new_secret_signs_as_soon_as_the_rotation_returns(
    webhook_server: Server, receiver: Receiver
) -> None:
    """During the overlap *every* event carries both signatures (docs/webhooks.md), so a
    receiver that switches to the printed new secret at once loses nothing."""
    account = create_hooked(webhook_server, "switch", receiver.url())
    warm = webhook_server.send_one(account, sms())["messageId"]  # the gateway reads the account
    wait_acked(receiver, {evt(warm, "processing"), evt(warm, "delivered")})
    rotated = webhook_server.cli("accounts", "rotate-webhook-secret", account.username)
    new = json.loads(rotated.stdout)["webhookSecret"]
    rotated_at = time.time()

    mid = webhook_server.send_one(account, sms())["messageId"]
    ids = {evt(mid, "processing"), evt(mid, "delivered")}
    for hook in [h for h in wait_acked(receiver, ids) if h.webhook_id in ids]:
        assert len(signatures(hook)) == 2, (
            f"{hook.webhook_id}, sent {hook.t - rotated_at:.1f} s after the rotation, "
            f"has one signature only: {hook.headers['webhook-signature']!r}"
        )
        assert_verifies(hook, new)
        assert_verifies(hook, account.webhook_secret)


def _verifies(body: bytes, headers: dict[str, str], secret: str) -> bool:
    try:
        standardwebhooks.Webhook(secret).verify(body, headers)
    except standardwebhooks.WebhookVerificationError:
        return False
    return True


# -- 6. callbackUrl, the payload, 410, Retry-After, giving up ---------------------------


def test_only_the_allowed_private_range_is_reachable(webhook_server: Server) -> None:
    """This server allows 127.0.0.1/32 (its receivers listen there), nothing else
    inside (tests/e2e/test_hostile.py: the default, nothing allowed)."""
    account = webhook_server.create_account("ssrf")
    urls = ["http://127.0.0.1:9/hook", "http://127.0.0.2:9/hook", "http://localhost:9/hook"]
    entries = webhook_server.send(account, [sms(callbackUrl=u) for u in urls])["messages"]
    assert [e["status"] for e in entries] == ["accepted", "rejected", "accepted"], entries
    assert entries[1]["error"]["code"] == "INVALID_CALLBACK_URL"


def test_a_callback_url_allowed_when_accepted_is_checked_again_when_sent(
    tmp_path: Path, start_webhook_server: StartServer, receiver: Receiver
) -> None:
    """Accepted while 127.0.0.1 was allowed; sent after a restart without that range:
    the sender refuses to connect, and the event fails with the reason."""
    workdir = tmp_path / "gateway"
    first = start_webhook_server(workdir, {}, "--no-workers")  # nothing sent before the restart
    account = first.create_account("recheck")
    mid = first.send_one(account, sms(callbackUrl=receiver.url("/cb")))["messageId"]
    assert first.proc is not None
    first.proc.terminate()
    first.proc.wait(10)

    closed = {"BATGATE_WEBHOOKS__ALLOW_PRIVATE_CALLBACKS": "[]"}
    second = start_webhook_server(workdir, closed)
    second.wait_final(account, mid)
    events = wait_until(
        lambda: webhook_events(second, account),
        lambda seen: len(seen) == 2 and {e["state"] for e in seen} == {"failed"},
        "both events to fail without being sent",
    )
    assert all("not sent: 127.0.0.1 is a loopback address" in e["lastError"] for e in events)
    assert receiver.hooks() == []


def test_callback_url_overrides_the_account_url(webhook_server: Server, receiver: Receiver) -> None:
    account = create_hooked(webhook_server, "cb", receiver.url("/account"))
    bare = webhook_server.create_account("cbbare")  # no webhook URL of its own
    own = webhook_server.send_one(account, sms(callbackUrl=receiver.url("/callback")))["messageId"]
    plain = webhook_server.send_one(account, sms())["messageId"]
    lone = webhook_server.send_one(bare, sms(callbackUrl=receiver.url("/lone")))["messageId"]
    silent = webhook_server.send_one(bare, sms())["messageId"]

    both = ("processing", "delivered")
    hooks = wait_acked(receiver, {evt(m, s) for m in (own, plain, lone) for s in both})
    webhook_server.wait_final(bare, silent)
    by_path: dict[str, set[str]] = defaultdict(set)
    for hook in hooks:
        by_path[hook.path].add(hook.payload["messageId"])
    assert dict(by_path) == {"/callback": {own}, "/account": {plain}, "/lone": {lone}}
    for hook in hooks:
        secret = bare.webhook_secret if hook.path == "/lone" else account.webhook_secret
        assert_verifies(hook, secret)
    events = webhook_events(webhook_server, account)
    urls = {(e["messageId"], e["url"]) for e in events}
    assert urls == {(own, receiver.url("/callback")), (plain, None)}
    assert {e["messageId"] for e in webhook_events(webhook_server, bare)} == {lone}


def test_events_go_out_as_soon_as_a_webhook_url_is_set(
    webhook_server: Server, receiver: Receiver
) -> None:
    """`accounts set-webhook NAME URL` on an account without one: the next status
    changes are POSTed (SPEC §4: every change after `scheduled`)."""
    account = webhook_server.create_account("late")  # no webhook URL yet
    before = webhook_server.send_one(account, sms())["messageId"]
    webhook_server.wait_final(account, before)
    done = webhook_server.cli("accounts", "set-webhook", account.username, receiver.url())
    assert json.loads(done.stdout)["webhookEnabled"] is True

    mid = webhook_server.send_one(account, sms())["messageId"]
    webhook_server.wait_final(account, mid)
    ids = {evt(mid, "processing"), evt(mid, "delivered")}
    try:
        hooks = wait_acked(receiver, ids, timeout=30)
    except AssertionError:
        events = webhook_events(webhook_server, account)
        raise AssertionError(
            f"the events of {mid}, sent just after set-webhook, never went out (waited "
            f"30 s); the outbox lists {[e['webhookId'] for e in events]}, the receiver "
            f"got {[h.webhook_id for h in receiver.hooks()]}"
        ) from None
    assert_ordered(hooks, {mid: ["processing", "delivered"]})
    assert_verifies(hooks[0], account.webhook_secret)


def test_payload_fields(webhook_server: Server, receiver: Receiver) -> None:
    account = create_hooked(webhook_server, "payload", receiver.url())
    promo = {"from": "batgate", "type": "viber_promo", "text": "Sale"}
    fallback = {"type": "sms", "text": "Sale"}
    # message, partscount, final status, cost
    cases: list[tuple[dict[str, Any], int, str, float]] = [
        (sms(customerMessageId="order-1001"), 1, "delivered", 0.05),
        (sms(), 1, "delivered", 0.05),
        (sms(text="a" * 161, customerMessageId="two-parts"), 2, "delivered", 0.10),
        (sms(UNDELIVERABLE, customerMessageId="bad"), 1, "undeliverable", 0.0),
        (sms(TRANSIENT, customerMessageId="transient"), 1, "permanenterror", 0.0),
        ({**promo, "to": NO_VIBER, "fallback": fallback}, 1, "delivered", 0.05),
        ({**promo, "to": NORMAL, "fallback": fallback}, 1, "delivered", 0.03),
    ]
    sent_at = time.time()
    answer = webhook_server.send(account, [message for message, *_ in cases])
    mids = [m["messageId"] for m in answer["messages"]]
    webhook_server.wait_all(account, mids, timeout=20)
    finals = {mid: webhook_server.status(account, mid) for mid in mids}
    # Retries while still scheduled end in permanenterror without ever processing.
    expected = {
        mid: [final] if message["to"] == TRANSIENT else ["processing", final]
        for mid, (message, _, final, _) in zip(mids, cases, strict=True)
    }
    ids = {evt(mid, s) for mid, statuses in expected.items() for s in statuses}
    hooks = wait_acked(receiver, ids)
    assert_ordered(hooks, expected)

    by_id = {h.webhook_id: h for h in first_arrivals(hooks)}
    for mid, (message, parts, final, cost) in zip(mids, cases, strict=True):
        assert finals[mid]["deliverystatus"] == final
        stamps = []
        for status in expected[mid]:
            hook = by_id[evt(mid, status)]
            _check_headers(hook)
            assert_verifies(hook, account.webhook_secret)
            stamps.append(_check_payload(hook.payload, message, mid, answer, parts))
            assert sent_at - 1 <= stamps[-1] <= hook.t + 1, (hook.payload, sent_at, hook.t)
        assert stamps == sorted(stamps)
        last = by_id[evt(mid, final)].payload
        assert last["cost"] == pytest.approx(cost) and last["cost"] == finals[mid]["cost"]
        assert last["partscount"] == finals[mid]["partscount"]
        assert last.get("extendedStatuses") == finals[mid].get("extendedStatuses")


def _check_payload(
    body: dict[str, Any], message: dict[str, Any], mid: str, answer: dict[str, Any], parts: int
) -> float:
    """The SPEC §4 fields of one event; its timestamp (epoch seconds)."""
    fields = set(BASE_FIELDS)
    if body["deliverystatus"] in FINAL:
        fields.add("cost")
    if "fallback" in message:
        fields.add("extendedStatuses")
        assert set(body["extendedStatuses"]) == {"viber", "sms"}, body
    assert set(body) == fields, body
    assert body["messageId"] == mid
    assert body["messagelistId"] == answer["messagelistId"]
    assert body["customerMessageId"] == message.get("customerMessageId")
    assert body["partscount"] == parts
    assert RFC3339_Z.match(body["timestamp"]), body
    return datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")).timestamp()


def _check_headers(hook: Hook) -> None:
    assert hook.headers["content-type"].startswith("application/json")
    assert hook.headers["user-agent"].startswith("batgate/")
    assert abs(int(hook.headers["webhook-timestamp"]) - hook.t) < 60
    assert hook.headers["webhook-signature"].startswith("v1,")


def test_410_disables_the_endpoint_until_an_operator_enables_it(
    webhook_server: Server, receiver: Receiver
) -> None:
    receiver.set_rules({"/gone": {"always": 410}, "/cb-gone": {"always": 410}})
    account = create_hooked(webhook_server, "gone", receiver.url("/gone"))
    first = webhook_server.send_one(account, sms())["messageId"]
    receiver.wait(lambda hooks: len(hooks) >= 1, 30, "the 410", path="/gone")
    receiver.set_rules({"/cb-gone": {"always": 410}})  # the endpoint is healthy again

    assert account_info(webhook_server, account.username)["webhookEnabled"] is False
    second = webhook_server.send_one(account, sms())["messageId"]
    webhook_server.wait_all(account, [first, second], timeout=30)
    time.sleep(1.5)  # events are due all this time: nothing may go out
    held = receiver.hooks("/gone")
    assert [(h.webhook_id, h.answer) for h in held] == [(evt(first, "processing"), 410)]
    events = {e["webhookId"]: e for e in webhook_events(webhook_server, account)}
    assert len(events) == 4 and {e["state"] for e in events.values()} == {"pending"}
    assert events[evt(first, "processing")]["lastStatus"] == 410

    enabled = json.loads(
        webhook_server.cli("accounts", "set-webhook", account.username, "--enable").stdout
    )
    assert enabled["webhookEnabled"] is True
    assert account_info(webhook_server, account.username)["webhookEnabled"] is True
    ids = {evt(m, s) for m in (first, second) for s in ("processing", "delivered")}
    hooks = wait_acked(receiver, ids, path="/gone")
    assert_ordered(hooks, {first: ["processing", "delivered"], second: ["processing", "delivered"]})

    # A 410 from a message's callbackUrl fails that event only; the account stays enabled.
    other = create_hooked(webhook_server, "cbgone", receiver.url("/other"))
    doomed = webhook_server.send_one(other, sms(callbackUrl=receiver.url("/cb-gone")))["messageId"]
    fine = webhook_server.send_one(other, sms())["messageId"]
    wait_acked(receiver, {evt(fine, "processing"), evt(fine, "delivered")}, path="/other")
    webhook_server.wait_final(other, doomed)
    receiver.wait(lambda hooks: len(hooks) >= 2, 30, "both 410s", path="/cb-gone")
    doomed_ids = [evt(doomed, "processing"), evt(doomed, "delivered")]
    deadline = time.monotonic() + 10
    while True:
        states = {e["webhookId"]: e for e in webhook_events(webhook_server, other)}
        if all(states.get(i, {}).get("state") == "failed" for i in doomed_ids):
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.3)
    assert [states[i]["lastStatus"] for i in doomed_ids] == [410, 410]
    assert [h.webhook_id for h in receiver.hooks("/cb-gone")] == doomed_ids
    assert account_info(webhook_server, other.username)["webhookEnabled"] is True


def test_retry_after_is_honoured(webhook_server: Server, receiver: Receiver) -> None:
    receiver.set_rules(
        {
            "/seconds": {"fail_first": 1, "fail_status": 429, "fail_headers": {"Retry-After": "2"}},
            "/date": {"fail_first": 1, "fail_status": 503, "retry_after_date": 3},
        }
    )
    account = create_hooked(webhook_server, "later", receiver.url())
    mids = [
        webhook_server.send_one(account, sms(callbackUrl=receiver.url(path)))["messageId"]
        for path in ("/seconds", "/date")
    ]
    ids = {evt(mid, s) for mid in mids for s in ("processing", "delivered")}
    hooks = wait_acked(receiver, ids, timeout=20)
    assert_ordered(hooks, {mid: ["processing", "delivered"] for mid in mids})
    for webhook_id in ids:
        attempts = [h for h in hooks if h.webhook_id == webhook_id]
        assert [h.answer for h in attempts][:1] in ([429], [503]), attempts
        assert len(attempts) == 2 and attempts[1].acked, attempts
        # The schedule alone would retry after ~0.2 s; the answer asked for 2 s or more.
        assert attempts[1].t - attempts[0].t >= 1.5, (webhook_id, attempts[1].t - attempts[0].t)


def test_a_timeout_is_a_failed_attempt_and_retried(
    webhook_server: Server, receiver: Receiver
) -> None:
    # The server waits 2 s (BATGATE_WEBHOOKS__TIMEOUT); the first attempts hang for 3.
    receiver.set_rules({"/hook": {"hang": 3, "hang_first": 1}})
    account = create_hooked(webhook_server, "slowpoke", receiver.url())
    mid = webhook_server.send_one(account, sms())["messageId"]
    ids = {evt(mid, "processing"), evt(mid, "delivered")}
    hooks = wait_acked(receiver, ids, timeout=20)
    assert_ordered(hooks, {mid: ["processing", "delivered"]})
    for webhook_id in ids:
        attempts = [h for h in hooks if h.webhook_id == webhook_id]
        assert [h.answer for h in attempts] == ["hang", 200], attempts
        assert attempts[1].t - attempts[0].t >= 1.5  # after the timeout, not before
    events = webhook_events(webhook_server, account)
    assert [(e["state"], e["attempts"]) for e in events] == [("delivered", 2)] * 2
    stored = attempts_stored(webhook_server)
    for event in events:
        assert stored[event["id"]] == [(None, "timeout"), (200, None)], event


def test_given_up_events_are_listed_and_sent_again_by_an_operator(
    tmp_path: Path, start_webhook_server: StartServer, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver({"/hook": {"always": 500}})
    # Three quick attempts (waits of 0.2 s add up to 0.3 s), then the event is failed.
    server = start_webhook_server(tmp_path / "gateway", {"BATGATE_WEBHOOKS__GIVE_UP_AFTER": "0.3"})
    account = create_hooked(server, "giveup", receiver.url())
    one, two = [m["messageId"] for m in server.send(account, [sms(), sms()])["messages"]]
    ids = [evt(mid, s) for mid in (one, two) for s in ("processing", "delivered")]
    server.wait_all(account, [one, two], timeout=30)
    receiver.wait(lambda hooks: len(hooks) >= 12, 15, "three attempts of every event")
    deadline = time.monotonic() + 10
    while len(failed := webhook_events(server, account, "--failed")) < 4:
        assert time.monotonic() < deadline, failed
        time.sleep(0.3)
    by_id = {e["webhookId"]: e for e in failed}
    assert sorted(by_id) == sorted(ids)
    for event in failed:
        assert (event["state"], event["attempts"], event["lastStatus"]) == ("failed", 3, 500)
    time.sleep(0.5)  # nothing more is tried
    hooks = receiver.hooks()
    assert len(hooks) == 12 and {h.answer for h in hooks} == {500}
    assert sorted(h.webhook_id for h in hooks) == sorted(ids * 3)
    stored = attempts_stored(server)
    assert all(len(stored[e["id"]]) == 3 for e in failed)

    receiver.set_rules({})
    retried = server.cli("webhooks", "retry", str(by_id[evt(one, "processing")]["id"]))
    assert json.loads(retried.stdout) == {"retried": 1}
    wait_acked(receiver, {evt(one, "processing")})
    still = {e["webhookId"] for e in webhook_events(server, account, "--failed")}
    assert still == set(ids) - {evt(one, "processing")}
    again = server.cli("webhooks", "retry", str(by_id[evt(one, "processing")]["id"]), check=False)
    assert again.returncode != 0  # it is not failed (any more)

    retried = server.cli("webhooks", "retry", "--all-failed")
    assert json.loads(retried.stdout) == {"retried": 3}
    hooks = wait_acked(receiver, set(ids))[12:]
    assert sorted(h.webhook_id for h in hooks) == sorted(ids)
    assert_ordered(hooks, {mid: ["processing", "delivered"] for mid in (one, two)})
    assert webhook_events(server, account, "--failed") == []
    events = webhook_events(server, account)
    assert [(e["state"], e["lastStatus"]) for e in events] == [("delivered", 200)] * 4
    stored = attempts_stored(server)
    assert all([code for code, _ in stored[e["id"]]] == [500] * 3 + [200] for e in events)


# -- isolation ------------------------------------------------------------------------


def test_a_dead_endpoint_does_not_hold_back_the_others(
    webhook_server: Server, make_receiver: MakeReceiver
) -> None:
    """An endpoint that never answers (every request hangs past the sender's 2 s
    timeout) gets at most `per_endpoint` (8) requests at a time, and another
    account's events go out meanwhile."""
    dead = make_receiver({"/hook": {"hang": 60}})
    healthy = make_receiver()
    stuck = create_hooked(webhook_server, "stuck", dead.url())
    fine = create_hooked(webhook_server, "fine", healthy.url())
    webhook_server.send(stuck, [sms() for _ in range(100)])  # 200 events for the dead one
    dead.wait(lambda hooks: len(hooks) >= 8, 15, "requests hanging at the dead endpoint")

    sent = webhook_server.send(fine, [sms() for _ in range(20)])
    ids = {evt(m["messageId"], s) for m in sent["messages"] for s in ("processing", "delivered")}
    wait_acked(healthy, ids, timeout=20)

    deadline = time.monotonic() + 20
    while len(attempts := attempt_spans(webhook_server, dead.url())) < 24:
        assert time.monotonic() < deadline, f"only {len(attempts)} attempts recorded"
        time.sleep(0.2)
    assert most_in_flight(attempts) <= 8
    pending = [e for e in webhook_events(webhook_server, stuck) if e["state"] != "delivered"]
    assert pending, "the dead endpoint's events are still waiting"
