"""Sending later and cancelling (SPEC §12) through the SDK: `send_at`, `promotional`,
`cancel()`, and how a cancel is retried.

Both clients, against the app in-process and a live `batgate serve`; then the retries
of a cancel against the scripted server, where an answer can be lost on purpose.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from client_support import (
    FAST_RETRIES,
    Answer,
    MakeClient,
    ScriptedServer,
    Target,
    error_answer,
    status_doc,
)

from batgate.client import (
    Button,
    CarouselItem,
    DeliveryStatus,
    Message,
    MessageRejectedError,
    NotCancellableError,
    NotFoundError,
    ServerError,
    ValidationError,
    flashcall,
    rcs,
    sms,
    viber_carousel,
    viber_otp,
    viber_promo,
    viber_survey,
    viber_trans,
)

OK = "+380501234567"
SLOW = "+380501230004"  # the sandbox keeps it processing for a minute
KYIV = ZoneInfo("Europe/Kyiv")


def in_an_hour() -> datetime:
    return datetime.now(KYIV) + timedelta(hours=1)


# -- cancel ------------------------------------------------------------------------------------


def test_a_scheduled_message_is_cancelled_once(client: Any) -> None:
    entry = client.send_sms(OK, "See you tomorrow", send_at=in_an_hour())
    assert client.status(entry.message_id).status is DeliveryStatus.SCHEDULED

    cancelled = client.cancel(entry.message_id)
    assert cancelled.message_id == entry.message_id
    assert (cancelled.status, cancelled.cost, cancelled.is_final) == (
        DeliveryStatus.PERMANENTERROR,
        0.0,
        True,
    )
    assert cancelled.raw["deliverystatus"] == "permanenterror"
    assert client.status(entry.message_id) == cancelled

    with pytest.raises(NotCancellableError) as again:
        client.cancel(entry.message_id)
    assert isinstance(again.value, ValidationError)
    assert (again.value.status_code, again.value.code) == (409, "NOT_CANCELLABLE")


def wait_for(client: Any, message_id: str, status: DeliveryStatus, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while client.status(message_id).status is not status:
        assert time.monotonic() < deadline, f"{message_id} not {status.value} in {timeout} s"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("to", "past"),
    [(OK, DeliveryStatus.DELIVERED), (SLOW, DeliveryStatus.PROCESSING)],
    ids=["delivered", "processing"],
)
def test_a_message_past_scheduled_is_not_cancellable(
    client: Any, to: str, past: DeliveryStatus
) -> None:
    entry = client.send_sms(to, "now")
    if past is DeliveryStatus.DELIVERED:
        client.wait_for_delivery(entry.message_id, timeout=20)
    else:
        wait_for(client, entry.message_id, past)
    with pytest.raises(NotCancellableError) as refused:
        client.cancel(entry.message_id)
    assert entry.message_id in refused.value.message
    assert client.status(entry.message_id).status is past


def test_an_unknown_or_anothers_message_is_not_found(
    make_client: MakeClient, target: Target
) -> None:
    alice = make_client()
    entry = alice.send_sms(OK, "alice's", send_at=in_an_hour())
    bob = make_client(api_key=target.bob_key)
    for message_id in ("no-such-message", entry.message_id):
        with pytest.raises(NotFoundError) as caught:
            bob.cancel(message_id)
        assert (caught.value.status_code, caught.value.code) == (404, "NOT_FOUND")
    assert alice.status(entry.message_id).status is DeliveryStatus.SCHEDULED
    with pytest.raises(ValueError):
        alice.cancel("")


# -- send_at and promotional -------------------------------------------------------------------


def _rfc3339(delta: timedelta, offset: str = "+02:00") -> str:
    hours = int(offset[1:3]) * (1 if offset[0] == "+" else -1)
    moment = datetime.now(timezone(timedelta(hours=hours))) + delta
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + offset


@pytest.mark.parametrize(
    ("when", "status"),
    [
        (lambda: datetime.now(KYIV) + timedelta(hours=1), "scheduled"),
        (lambda: _rfc3339(timedelta(days=34), "-05:00"), "scheduled"),
        (lambda: datetime.now(UTC) - timedelta(hours=1), "now"),
        (lambda: datetime.now(UTC) + timedelta(days=36), "INVALID_SEND_AT"),
        (lambda: "2026-12-24T09:00:00", "INVALID_SEND_AT"),
    ],
    ids=["aware-hour", "text-34-days-west", "past-means-now", "36-days", "no-offset"],
)
def test_send_at_is_accepted_or_rejected_per_message(
    client: Any, when: Callable[[], datetime | str], status: str
) -> None:
    if status == "INVALID_SEND_AT":
        with pytest.raises(MessageRejectedError) as rejected:
            client.send_sms(OK, "later", send_at=when())
        assert rejected.value.code == "INVALID_SEND_AT"
        return
    entry = client.send_sms(OK, "later", send_at=when())
    if status == "scheduled":
        assert client.status(entry.message_id).status is DeliveryStatus.SCHEDULED
    else:
        assert client.wait_for_delivery(entry.message_id, timeout=20).delivered


def test_one_bad_send_at_does_not_sink_the_batch(client: Any) -> None:
    result = client.send(
        [
            sms(OK, "later", send_at=in_an_hour()),
            sms(OK, "too late", send_at=datetime.now(UTC) + timedelta(days=60)),
            viber_promo(OK, "sale", send_at=in_an_hour(), promotional=True),
            Message(
                "sms",
                OK,
                text="Cascade's name",
                extra={"scheduledTime": _rfc3339(timedelta(hours=3))},
            ),
            sms(OK, "promo now", promotional=True),
        ]
    )
    assert [e.error_code for e in result.entries] == [None, "INVALID_SEND_AT", None, None, None]
    statuses = client.statuses(result.message_ids)
    assert [r.status.status.value for r in statuses[:3]] == ["scheduled"] * 3
    assert client.wait_for_delivery(result.message_ids[3], timeout=20).delivered


def test_a_naive_datetime_is_refused_before_sending(client: Any) -> None:
    with pytest.raises(ValueError, match="naive"):
        client.send_sms(OK, "when?", send_at=datetime(2030, 1, 1, 9, 0))
    with pytest.raises(ValueError, match="naive"):
        viber_promo(OK, "sale", send_at=datetime.now())


AT = datetime(2026, 12, 24, 9, 0, tzinfo=KYIV)
AT_TEXT = "2026-12-24T09:00:00+02:00"
BUTTON = Button("Shop", "https://example.com")
CARD = CarouselItem("A", "https://example.com/a.png", BUTTON)


@pytest.mark.parametrize(
    "build",
    [
        lambda **kw: sms(OK, "hi", **kw),
        lambda **kw: viber_promo(OK, "hi", **kw),
        lambda **kw: viber_trans(OK, "hi", **kw),
        lambda **kw: viber_carousel(OK, [CARD, CARD], **kw),
        lambda **kw: viber_survey(OK, "hi?", ["yes", "no"], **kw),
        lambda **kw: viber_otp(OK, code="123456", **kw),
        lambda **kw: rcs(OK, "hi", **kw),
        lambda **kw: flashcall(OK, "+380441234567", **kw),
    ],
    ids=["sms", "viber_promo", "viber_trans", "carousel", "survey", "otp", "rcs", "flashcall"],
)
@pytest.mark.parametrize(
    ("options", "wire"),
    [
        ({}, {}),
        ({"send_at": AT}, {"sendAt": AT_TEXT}),
        ({"send_at": AT.astimezone(UTC)}, {"sendAt": "2026-12-24T07:00:00+00:00"}),
        ({"send_at": "2026-12-24T07:00:00Z"}, {"sendAt": "2026-12-24T07:00:00Z"}),
        ({"send_at": AT.replace(microsecond=5000)}, {"sendAt": "2026-12-24T09:00:00.005000+02:00"}),
        ({"promotional": True}, {"promotional": True}),
        ({"promotional": False, "send_at": AT}, {"promotional": False, "sendAt": AT_TEXT}),
    ],
    ids=["neither", "aware", "utc", "text", "fraction", "promotional", "both"],
)
def test_every_builder_spells_send_at_and_promotional(
    build: Callable[..., Message], options: dict[str, Any], wire: dict[str, Any]
) -> None:
    doc = build(**options).to_json()
    assert {k: doc[k] for k in ("sendAt", "promotional") if k in doc} == wire


# -- a cancel's retries, against the scripted server -------------------------------------------

M1 = "/bat/message/m1"
CANCELLED = status_doc("m1", "permanenterror")
REFUSED = error_answer(409, "NOT_CANCELLABLE")


@pytest.mark.parametrize(
    ("answers", "outcome", "methods"),
    [
        ([Answer(200, CANCELLED)], "cancelled", ["DELETE"]),
        ([REFUSED], NotCancellableError, ["DELETE"]),
        (
            [error_answer(503, "INTERNAL_ERROR"), Answer(200, CANCELLED)],
            "cancelled",
            ["DELETE"] * 2,
        ),
        (
            [
                error_answer(429, "RATE_LIMITED"),
                REFUSED,
                Answer(200, status_doc("m1", "processing")),
            ],
            NotCancellableError,
            ["DELETE", "DELETE", "GET"],
        ),
        # The first DELETE's answer is lost: the 409 may be about its own cancel.
        (
            [Answer(action="drop"), REFUSED, Answer(200, CANCELLED)],
            "cancelled",
            ["DELETE"] * 2 + ["GET"],
        ),
        (
            [Answer(action="drop"), REFUSED, Answer(200, status_doc("m1", "processing"))],
            NotCancellableError,
            ["DELETE", "DELETE", "GET"],
        ),
        (
            [Answer(action="drop"), REFUSED, Answer(200, status_doc("m1", "delivered"))],
            NotCancellableError,
            ["DELETE", "DELETE", "GET"],
        ),
        ([error_answer(404, "NOT_FOUND")], NotFoundError, ["DELETE"]),
        ([error_answer(500, "INTERNAL_ERROR")], ServerError, ["DELETE"] * 4),
    ],
    ids=[
        "cancelled",
        "refused",
        "503-then-cancelled",
        "429-then-refused",
        "lost-then-refused-but-cancelled",
        "lost-then-refused-processing",
        "lost-then-refused-delivered",
        "not-found",
        "server-error",
    ],
)
def test_a_cancel_is_retried_and_a_lost_answer_is_looked_up(
    make_scripted_client: MakeClient,
    scripted: ScriptedServer,
    answers: list[Answer],
    outcome: str | type[Exception],
    methods: list[str],
) -> None:
    scripted.on(M1, *answers)
    client = make_scripted_client(retries=FAST_RETRIES)
    if isinstance(outcome, str):
        status = client.cancel("m1")
        assert (status.status, status.cost) == (DeliveryStatus.PERMANENTERROR, 0.0)
    else:
        with pytest.raises(outcome):
            client.cancel("m1")
    assert [s.method for s in scripted.requests(M1)] == methods
