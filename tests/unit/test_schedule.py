"""Sending later (SPEC §12), pure: `sendAt` parsing and horizon, quiet hours, which
types they hold, and the cancel transition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from batgate.domain.checks import Invalid
from batgate.domain.lifecycle import Progress, on_cancel
from batgate.domain.messages import ErrorCode, MessageType, NewMessage, Rejection, Step
from batgate.domain.schedule import QuietHours, is_held_type, promotional_flag, send_at
from batgate.domain.status import ChannelStatus, DeliveryStatus
from batgate.domain.validation import Limits, validate_message

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, None),
        ({"sendAt": None}, None),
        ({"sendAt": "2026-12-07T14:30:00+02:00"}, at("2026-12-07T12:30:00+00:00")),
        ({"sendAt": "2026-12-07T12:30:00Z"}, at("2026-12-07T12:30:00+00:00")),
        ({"sendAt": "2026-12-07t12:30:00z"}, at("2026-12-07T12:30:00+00:00")),
        ({"sendAt": "2026-12-07 12:30:00.250+00:00"}, at("2026-12-07T12:30:00.250+00:00")),
        ({"scheduledTime": "2026-12-08T00:00:00+00:00"}, at("2026-12-08T00:00:00+00:00")),
        # Both names for the same instant (written differently) are one time.
        (
            {"sendAt": "2026-12-08T02:00:00+02:00", "scheduledTime": "2026-12-08T00:00:00Z"},
            at("2026-12-08T00:00:00+00:00"),
        ),
        ({"sendAt": "2026-12-07T11:00:00Z"}, None),  # the past means now
        ({"sendAt": "2026-12-07T12:00:00Z"}, None),  # now is now
        ({"sendAt": "2027-01-11T12:00:00Z"}, at("2027-01-11T12:00:00+00:00")),  # 35 days
    ],
)
def test_send_at_reads(raw: dict[str, object], expected: float | None) -> None:
    assert send_at(raw, NOW) == expected


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"sendAt": "2027-01-11T12:00:01Z"}, "more than 35 days ahead"),
        ({"scheduledTime": "2030-01-01T00:00:00Z"}, "scheduledTime: "),
        ({"sendAt": "2026-12-07T14:30:00"}, "with an offset"),  # no offset: whose time?
        ({"sendAt": "2026-12-07"}, "not an RFC 3339 time"),
        ({"sendAt": "tomorrow"}, "not an RFC 3339 time"),
        ({"sendAt": "2026-02-30T10:00:00Z"}, "not a valid date"),
        ({"sendAt": "2026-12-07T25:00:00Z"}, "not a valid date"),
        ({"sendAt": 1765108800}, "must be an RFC 3339 string, got number"),
        ({"sendAt": True}, "got boolean"),
        (
            {"sendAt": "2026-12-08T00:00:00Z", "scheduledTime": "2026-12-09T00:00:00Z"},
            "different times",
        ),
    ],
)
def test_send_at_refuses(raw: dict[str, object], says: str) -> None:
    with pytest.raises(Invalid) as caught:
        send_at(raw, NOW)
    assert caught.value.code is ErrorCode.INVALID_SEND_AT
    assert says in caught.value.message


def sms(**extra: object) -> dict[str, object]:
    return {"type": "sms", "from": "Shop", "to": "+380501234567", "text": "hi", **extra}


def test_a_message_carries_its_time_and_ttl_counts_from_it() -> None:
    judged = validate_message(sms(sendAt="2026-12-08T12:00:00Z", ttl=60), Limits(), NOW)
    assert isinstance(judged, NewMessage)
    assert judged.send_at == NOW + DAY
    assert judged.primary.ttl == 60  # the store counts it from send_at (test_store)


def test_a_bad_send_at_rejects_only_that_message() -> None:
    judged = validate_message(sms(sendAt="2027-06-01T00:00:00Z"), Limits(), NOW)
    assert isinstance(judged, Rejection)
    assert judged.code is ErrorCode.INVALID_SEND_AT


@pytest.mark.parametrize(
    ("value", "expected"), [(None, False), (True, True), (False, False), ("yes", None)]
)
def test_promotional_flag(value: object, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(Invalid) as caught:
            promotional_flag({"promotional": value})
        assert caught.value.code is ErrorCode.INVALID_MESSAGE_DATA
    else:
        assert promotional_flag({"promotional": value}) is expected


@pytest.mark.parametrize(
    ("mtype", "promotional", "held"),
    [
        (MessageType.VIBER_PROMO, False, True),
        (MessageType.VIBER_CAROUSEL, False, True),
        (MessageType.VIBER_SURVEY, False, True),
        (MessageType.SMS, False, False),
        (MessageType.SMS, True, True),
        (MessageType.RCS, True, True),
        (MessageType.VIBER_TRANS, True, False),  # transactional: never held
        (MessageType.VIBER_OTP, True, False),  # an OTP: never held
        (MessageType.FLASHCALL, True, False),
    ],
)
def test_which_messages_quiet_hours_hold(mtype: MessageType, promotional: bool, held: bool) -> None:
    assert is_held_type(mtype, promotional) is held


KYIV = "Europe/Kyiv"  # UTC+2 in December


@pytest.mark.parametrize(
    ("window", "zone", "due", "release"),
    [
        # Across midnight: the evening part ends tomorrow morning, the morning part today.
        ("21:00-08:00", KYIV, "2026-12-07T22:30:00+02:00", "2026-12-08T08:00:00+02:00"),
        ("21:00-08:00", KYIV, "2026-12-08T03:00:00+02:00", "2026-12-08T08:00:00+02:00"),
        ("21:00-08:00", KYIV, "2026-12-07T21:00:00+02:00", "2026-12-08T08:00:00+02:00"),
        ("21:00-08:00", KYIV, "2026-12-07T20:59:59+02:00", None),
        ("21:00-08:00", KYIV, "2026-12-08T08:00:00+02:00", None),
        ("21:00-08:00", KYIV, "2026-12-07T12:00:00+02:00", None),
        # The same instant, judged in UTC: 20:30 there is before the window.
        ("21:00-08:00", "UTC", "2026-12-07T22:30:00+02:00", None),
        # Within one day.
        ("13:00-14:00", "UTC", "2026-12-07T13:15:00Z", "2026-12-07T14:00:00Z"),
        ("13:00-14:00", "UTC", "2026-12-07T14:15:00Z", None),
        # The recipient's zone: +1 415 is Los Angeles (UTC-8): midnight there.
        ("21:00-08:00", "recipient", "2026-12-07T08:00:00Z", "2026-12-07T16:00:00Z"),
    ],
)
def test_quiet_hours_release(window: str, zone: str, due: str, release: str | None) -> None:
    quiet = QuietHours.parse(window, zone)
    expected = None if release is None else at(release)
    assert quiet.release(at(due), "+14155552671") == expected


def test_quiet_hours_in_the_recipients_country_differ_by_number() -> None:
    quiet = QuietHours.parse("21:00-08:00", "recipient")
    due = at("2026-12-07T20:00:00Z")  # 22:00 in Kyiv, 15:00 in New York
    assert quiet.release(due, "+380501234567") == at("2026-12-08T08:00:00+02:00")
    assert quiet.release(due, "+12025550123") is None


@pytest.mark.parametrize(
    ("window", "zone", "says"),
    [
        ("21:00", "UTC", "not a window"),
        ("24:00-08:00", "UTC", "not a window"),
        ("9:00-10:00", "UTC", "not a window"),
        ("08:00-08:00", "UTC", "the same time"),
        ("21:00-08:00", "Mars/Olympus", "not a known time zone"),
    ],
)
def test_quiet_hours_refused(window: str, zone: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        QuietHours.parse(window, zone)


def progress(status: DeliveryStatus, steps: tuple[ChannelStatus, ...], step: int = 0) -> Progress:
    return Progress(status, step, steps, 0, NOW, NOW + 60)


def test_cancel_ends_a_scheduled_message_on_the_step_it_waits_on() -> None:
    waiting = progress(
        DeliveryStatus.SCHEDULED, (ChannelStatus.PERMANENTERROR, ChannelStatus.SCHEDULED), 1
    )
    t = on_cancel(waiting, NOW)
    assert t is not None
    assert t.entered == (DeliveryStatus.PERMANENTERROR,)
    assert t.progress.status is DeliveryStatus.PERMANENTERROR
    assert t.progress.steps == (ChannelStatus.PERMANENTERROR, ChannelStatus.PERMANENTERROR)
    assert t.progress.due_at is None
    assert [n.reason for n in t.notes] == ["cancelled by the account"]


@pytest.mark.parametrize(
    "status",
    [DeliveryStatus.PROCESSING, DeliveryStatus.DELIVERED, DeliveryStatus.PERMANENTERROR],
)
def test_cancel_refuses_a_message_past_scheduled(status: DeliveryStatus) -> None:
    assert on_cancel(progress(status, (ChannelStatus.PROCESSING,)), NOW) is None


def test_steps_of_a_scheduled_message_keep_their_ttl() -> None:
    step = Step(MessageType.SMS, "+380501234567", "Shop", "hi", None, 60, 1)
    assert NewMessage(None, (step,), send_at=NOW + 5).send_at == NOW + 5
