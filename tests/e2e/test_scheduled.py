"""Sending later (SPEC §12) against real `batgate serve` processes: a message with
`sendAt` waits `scheduled` until its time (across a restart), is cancelled while it
waits and not after, and quiet hours hold a promotion but never an OTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Receiver, Server

pytestmark = pytest.mark.e2e

StartServer = Callable[..., "Server"]
PHONE = "+380501234567"


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def sms(**extra: Any) -> dict[str, Any]:
    return {"type": "sms", "from": "Shop", "to": PHONE, "text": "See you at 9", **extra}


def entered(server: Server, message_id: str) -> dict[str, float]:
    """When the message entered each status, from its story (`batgate messages show`)."""
    shown = json.loads(server.cli("messages", "show", message_id, "--json").stdout)
    return {
        line["status"]: datetime.fromisoformat(line["at"]).timestamp()
        for line in shown["story"]
        if "status" in line
    }


def test_a_message_sent_later_waits_for_its_time(fast_server: Server) -> None:
    account = fast_server.create_account("later")
    send_at = time.time() + 5
    now_one = fast_server.send_one(account, sms())
    later = fast_server.send_one(account, sms(sendAt=rfc3339(send_at)))
    assert fast_server.status(account, later["messageId"])["deliverystatus"] == "scheduled"
    fast_server.wait_final(account, now_one["messageId"], 15)
    # Sent at once: delivered while the other still waits.
    assert fast_server.status(account, later["messageId"])["deliverystatus"] == "scheduled"
    trace = fast_server.wait_final(account, later["messageId"], 30)
    trace.assert_walk("delivered")
    assert entered(fast_server, later["messageId"])["processing"] >= round(send_at, 3)


def test_scheduled_time_is_smsbats_name_for_it(fast_server: Server) -> None:
    account = fast_server.create_account("later")
    send_at = time.time() + 3
    entry = fast_server.send_one(account, sms(scheduledTime=rfc3339(send_at)))
    fast_server.wait_final(account, entry["messageId"], 30)
    assert entered(fast_server, entry["messageId"])["processing"] >= round(send_at, 3)


@pytest.mark.parametrize(
    ("send_at", "says"),
    [
        ("2026-12-24T09:00:00", "with an offset"),
        ("next tuesday", "not an RFC 3339 time"),
        ("2099-01-01T00:00:00Z", "more than 35 days ahead"),
    ],
)
def test_a_bad_send_at_rejects_that_message_only(
    fast_server: Server, send_at: str, says: str
) -> None:
    account = fast_server.create_account("later")
    answer = fast_server.send(account, [sms(sendAt=send_at), sms()])
    bad, good = answer["messages"]
    assert bad["status"] == "rejected" and bad["messageId"] is None
    assert bad["error"]["code"] == "INVALID_SEND_AT" and says in bad["error"]["message"]
    assert good["status"] == "accepted"


def test_a_restart_changes_nothing(tmp_path: Path, start_webhook_server: StartServer) -> None:
    workdir = tmp_path / "gateway"
    first = start_webhook_server(workdir, {})
    account = first.create_account("later")
    # Far enough ahead that the second server is up before then: a start takes a few
    # seconds on a loaded machine, and the message must still be waiting when asked.
    send_at = time.time() + 15
    entry = first.send_one(account, sms(sendAt=rfc3339(send_at)))
    assert first.proc is not None
    first.proc.terminate()
    first.proc.wait(30)
    second = start_webhook_server(workdir, {})
    assert time.time() < send_at, "the restart took longer than the test allows"
    assert second.status(account, entry["messageId"])["deliverystatus"] == "scheduled"
    second.wait_final(account, entry["messageId"], 45).assert_walk("delivered")
    assert entered(second, entry["messageId"])["processing"] >= round(send_at, 3)


def test_cancel_before_and_after(webhook_server: Server, receiver: Receiver) -> None:
    account = webhook_server.create_account("cancel", webhook_url=receiver.url())
    waiting = webhook_server.send_one(account, sms(sendAt=rfc3339(time.time() + 600)))
    mid = waiting["messageId"]
    cancelled = webhook_server.http.delete(f"/bat/message/{mid}", headers=account.headers)
    assert cancelled.status_code == 200, cancelled.text
    doc = cancelled.json()
    assert (doc["messageId"], doc["deliverystatus"], doc["cost"]) == (mid, "permanenterror", 0)
    assert webhook_server.status(account, mid) == doc
    hooks = receiver.wait(lambda h: len(h) == 1, 15, "the cancelled message's webhook")
    assert hooks[0].payload["deliverystatus"] == "permanenterror"
    assert hooks[0].payload["messageId"] == mid
    again = webhook_server.http.delete(f"/bat/message/{mid}", headers=account.headers)
    webhook_server.assert_error(again, 409, "NOT_CANCELLABLE")

    sent = webhook_server.send_one(account, sms())["messageId"]
    webhook_server.wait_final(account, sent, 15)
    late = webhook_server.http.delete(f"/bat/message/{sent}", headers=account.headers)
    webhook_server.assert_error(late, 409, "NOT_CANCELLABLE")

    other = webhook_server.create_account("cancel")
    theirs = webhook_server.http.delete(f"/bat/message/{sent}", headers=other.headers)
    webhook_server.assert_error(theirs, 404, "NOT_FOUND")
    unknown = webhook_server.http.delete("/bat/message/nosuchid", headers=account.headers)
    webhook_server.assert_error(unknown, 404, "NOT_FOUND")
    anonymous = webhook_server.http.delete(f"/bat/message/{sent}")
    webhook_server.assert_error(anonymous, 401, "UNAUTHORIZED")


def test_quiet_hours_hold_a_promotion_but_not_an_otp(
    tmp_path: Path, start_webhook_server: StartServer
) -> None:
    """Real time: the account's quiet hours are the hour around now (UTC)."""
    now = datetime.now(UTC)
    window = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}"
    config = tmp_path / "quiet.toml"
    config.write_text(f'[accounts.quiet1]\nquiet_hours = "{window}"\ntimezone = "UTC"\n')
    server = start_webhook_server(tmp_path / "gateway", {"BATGATE_CONFIG": str(config)})
    account = server.create_account("quiet")
    assert account.username == "quiet1"
    otp = {"type": "viber_otp", "from": "Shop", "to": PHONE}
    otp["messageData"] = {"code": "123456", "validity": 300}
    promo = {"type": "viber_promo", "from": "Shop", "to": PHONE, "text": "20% off"}
    flagged = sms(promotional=True)
    answer = server.send(account, [otp, promo, flagged, sms()])
    ids = [m["messageId"] for m in answer["messages"]]
    assert all(ids), answer
    traces = server.wait_all(account, [ids[0], ids[3]], 30)
    assert {t.final["deliverystatus"] for t in traces.values()} == {"delivered"}
    held = [server.status(account, mid)["deliverystatus"] for mid in ids[1:3]]
    assert held == ["scheduled", "scheduled"]
    # Another account has no quiet hours: its promotion goes at once.
    free = server.create_account("free")
    (entry,) = server.send(free, [promo])["messages"]
    server.wait_final(free, entry["messageId"], 30)
    for mid in ids[1:3]:  # what waits may still be cancelled
        response = server.http.delete(f"/bat/message/{mid}", headers=account.headers)
        assert response.json()["deliverystatus"] == "permanenterror"
