"""The sans-I/O core on its own: operations driven by hand, with a clock the test moves.

No server, no sleeping: the driver below answers `Call`s from a function, moves
the fake clock on `Sleep`, and runs `Gather`s one op after the other. So the pace
of polling, the rate limit and the backoff are checked as numbers.
"""

from __future__ import annotations

import builtins
import email.utils
import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from client_support import Answerer, Clock, Driver

from batgate.client import (
    AuthenticationError,
    BatgateError,
    Button,
    CarouselItem,
    DeliveryTimeoutError,
    IdempotencyKeyReusedError,
    Message,
    MessageRejectedError,
    MessageStatus,
    NetworkError,
    NotFoundError,
    PollPolicy,
    ProtocolError,
    RateLimitedError,
    RateLimiter,
    RcsButton,
    RequestTimeoutError,
    Retries,
    SendResult,
    ServerError,
    StatusCache,
    TimeoutError,
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
from batgate.client.core import ClientOptions, Core
from batgate.client.retry import retry_after


def core(clock: Clock, **options: Any) -> Core:
    opts: ClientOptions = {"api_key": "k", **options}  # type: ignore[typeddict-item]
    return Core("http://gw.test", opts, clock)


def status_answer(status: str = "processing") -> Answerer:
    return per_id(
        lambda mid: httpx.Response(200, json={"messageId": mid, "deliverystatus": status})
    )


def per_id(answer: Callable[[str], httpx.Response], bulk: bool = True) -> Answerer:
    """A server answering `GET /bat/message/{id}` with `answer(id)`, and, with `bulk`,
    `POST /bat/message/status` with the same per id (batgate); without, a 405 to it."""

    def serve(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return answer(request.url.path.rsplit("/", 1)[-1])
        if not bulk:
            return httpx.Response(405, json=_error("METHOD_NOT_ALLOWED"))
        entries = []
        for mid in json.loads(request.content)["messageIds"]:
            single = answer(mid)
            if single.status_code != 200:
                return single  # the whole request fails as the GET would
            entries.append({"messageId": mid, **single.json()})
        return httpx.Response(200, json={"messages": entries})

    return serve


def not_found_entry(mid: str) -> httpx.Response:
    """What a bulk answer holds for an unknown id (the GET would answer 404)."""
    return httpx.Response(200, json={"messageId": mid, **_error("NOT_FOUND")})


# -- polling pace ----------------------------------------------------------------------------


def test_wait_polls_at_most_once_a_second_by_default_and_backs_off() -> None:
    clock = Clock()
    driver = Driver(status_answer("processing"), clock)
    start = clock.now
    with pytest.raises(DeliveryTimeoutError) as caught:
        driver.run(core(clock).wait_for_delivery("m1", timeout=60))
    times = driver.times_of("m1")
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert times[0] == start  # the first look is at once
    assert all(gap >= 1.0 for gap in gaps)
    assert gaps[0] < 1.3 and max(gaps) > 5  # exponential growth, from ~1 s …
    assert max(gaps) <= 12.0  # … to 10 s ±20 %
    assert times[-1] <= start + 60  # never polls after the deadline
    assert clock.now <= start + 60
    assert len(times) < 15
    error = caught.value
    assert error.last_status is not None and error.last_status.status == "processing"
    assert "m1" in str(error)


def test_wait_returns_the_final_status_as_soon_as_it_is_seen() -> None:
    clock = Clock()
    answers = iter(["scheduled", "processing", "undeliverable"])

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"messageId": "m1", "deliverystatus": next(answers)})

    driver = Driver(answer, clock)
    status = driver.run(core(clock).wait_for_delivery("m1", timeout=60))
    assert status.status == "undeliverable" and status.is_final and not status.delivered
    assert len(driver.calls) == 3


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "per-id"])
def test_wait_for_all_stops_asking_about_final_messages(bulk: bool) -> None:
    clock = Clock()
    polls = {"a": 0, "b": 0}

    def answer(mid: str) -> httpx.Response:
        polls[mid] += 1
        final = mid == "a" or polls[mid] >= 4
        return httpx.Response(200, json={"deliverystatus": "delivered" if final else "processing"})

    driver = Driver(per_id(answer, bulk), clock)
    seen: list[list[str]] = []
    statuses = driver.run(
        core(clock).wait_for_all(
            ["b", "a"], on_progress=lambda s: seen.append([x.status.value for x in s])
        )
    )
    assert [s.message_id for s in statuses] == ["b", "a"]
    assert polls == {"a": 1, "b": 4}
    assert seen[0] == ["processing", "delivered"] and seen[-1] == ["delivered", "delivered"]


def test_wait_with_a_short_timeout_looks_once_more_at_the_deadline() -> None:
    clock = Clock()
    driver = Driver(status_answer("processing"), clock)
    policy = PollPolicy.exponential(first=5, min_interval=1)
    with pytest.raises(DeliveryTimeoutError):
        driver.run(core(clock, poll=policy).wait_for_delivery("m1", timeout=3))
    assert [t - 1000.0 for t in driver.times_of("m1")] == [0.0, 3.0]


@pytest.mark.parametrize(
    ("bulk", "requests"), [(True, 1), (False, 3)], ids=["bulk", "405-then-per-id"]
)
def test_wait_with_a_zero_timeout_looks_once(bulk: bool, requests: int) -> None:
    clock = Clock()
    scheduled = per_id(lambda m: httpx.Response(200, json={"deliverystatus": "scheduled"}), bulk)
    driver = Driver(scheduled, clock)
    with pytest.raises(DeliveryTimeoutError) as caught:
        driver.run(core(clock).wait_for_all(["a", "b"], timeout=0))
    assert len(driver.calls) == requests
    assert "2 of 2 messages" in str(caught.value)
    assert set(caught.value.last_statuses) == {"a", "b"}


def test_wait_for_all_raises_an_error_reading_a_status() -> None:
    clock = Clock()
    driver = Driver(lambda r: httpx.Response(404, json=_error("NOT_FOUND")), clock)
    with pytest.raises(NotFoundError):
        driver.run(core(clock).wait_for_all(["a"]))


# -- the client-side rate limit ----------------------------------------------------------------


def test_rate_limiter_allows_a_burst_then_spaces_requests() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=4, burst=2, clock=clock)
    assert [limiter.reserve() for _ in range(5)] == [0.0, 0.0, 0.25, 0.5, 0.75]
    clock.now += 10
    assert limiter.reserve() == 0.0


def test_statuses_with_a_rate_limit_space_their_requests() -> None:
    clock = Clock()
    delivered = per_id(lambda m: httpx.Response(200, json={"deliverystatus": "delivered"}), False)
    driver = Driver(delivered, clock)
    ids = [f"m{i}" for i in range(6)]
    results = driver.run(core(clock).statuses(ids, rate_limit=10))
    assert [r.message_id for r in results] == ids and all(r.ok for r in results)
    times = [t for t, _ in driver.calls]
    assert all(b - a >= 0.1 - 1e-9 for a, b in zip(times, times[1:], strict=False))


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "per-id"])
def test_statuses_report_errors_per_id_but_raise_authentication(bulk: bool) -> None:
    clock = Clock()

    def answer(mid: str) -> httpx.Response:
        if mid == "gone":
            return not_found_entry(mid) if bulk else httpx.Response(404, json=_error("NOT_FOUND"))
        return httpx.Response(200, json={"deliverystatus": "delivered"})

    results = Driver(per_id(answer, bulk), clock).run(core(clock).statuses(["a", "gone", "b"]))
    assert [type(r.error) for r in results] == [type(None), NotFoundError, type(None)]
    assert (results[1].error.status_code, results[1].error.code) == (404, "NOT_FOUND")
    unauthorized = Driver(lambda r: httpx.Response(401, json=_error("UNAUTHORIZED")), clock)
    with pytest.raises(AuthenticationError):
        unauthorized.run(core(clock).statuses(["a"]))


# -- retries ----------------------------------------------------------------------------------


def test_default_retries_back_off_exponentially_with_jitter() -> None:
    retries = Retries()
    rng = random.Random(1)
    for failures, base in enumerate([0.5, 1.0, 2.0, 4.0], start=1):
        for _ in range(20):
            delay = retries.backoff.delay(failures, rng)
            assert delay is not None and base * 0.5 <= delay <= base * 1.5
    assert retries.delay(5) is None


def test_retry_after_is_honoured_up_to_the_maximum() -> None:
    retries = Retries.exponential(retries=2, first=0.1, jitter=0, max_retry_after=30)
    assert retries.delay(1, 5.0) == 5.0
    assert retries.delay(1, 0.0) == 0.1  # never less than the backoff
    assert retries.delay(1, 31.0) is None
    assert retries.delay(3, 1.0) is None  # retries ran out
    assert Retries.off().delay(1) is None


def test_retry_after_header_forms() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after("3") == 3.0
    assert retry_after(" 1.5 ") == 1.5
    assert retry_after(date, now=now) == pytest.approx(30.0)
    assert retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


def test_a_request_is_retried_through_sleep_commands() -> None:
    clock = Clock()
    answers = iter(
        [
            httpx.ConnectError("refused"),
            httpx.Response(503, json=_error("INTERNAL_ERROR")),
            httpx.Response(429, headers={"Retry-After": "7"}, json=_error("RATE_LIMITED")),
            httpx.Response(200, json={"deliverystatus": "delivered"}),
        ]
    )
    driver = Driver(lambda r: next(answers), clock)  # type: ignore[arg-type,return-value]
    status = driver.run(core(clock).status("m1"))
    assert status.delivered
    assert len(driver.calls) == 4
    assert driver.sleeps[2] == 7.0


def test_an_unretryable_transport_error_is_raised_at_once() -> None:
    clock = Clock()
    driver = Driver(lambda r: httpx.UnsupportedProtocol("ftp"), clock)  # type: ignore[arg-type,return-value]
    with pytest.raises(NetworkError):
        driver.run(core(clock).status("m1"))
    assert len(driver.calls) == 1


# -- requests --------------------------------------------------------------------------------


def test_requests_carry_auth_timeout_and_a_quoted_id() -> None:
    clock = Clock()
    driver = Driver(status_answer("delivered"), clock)
    driver.run(core(clock, timeout=3.0, headers={"X-Trace": "t1"}).status("a/b c"))
    ((_, request),) = driver.calls
    assert request.url == "http://gw.test/bat/message/a%2Fb%20c"
    assert request.headers["X-Authorization-Key"] == "k"
    assert request.headers["X-Trace"] == "t1"
    assert request.extensions["timeout"] == httpx.Timeout(3.0).as_dict()


def test_the_client_sender_fills_only_a_missing_from() -> None:
    c = core(Clock(), sender="Shop")
    assert c.wire(sms("+380501234567", "a"))["from"] == "Shop"
    assert c.wire(sms("+380501234567", "a", sender="Own"))["from"] == "Own"
    assert c.wire({"type": "sms", "from": None})["from"] == "Shop"
    assert "from" not in core(Clock()).wire(sms("+380501234567", "a"))


def test_send_one_raises_the_rejection() -> None:
    clock = Clock()
    answer = {
        "messagelistId": 3,
        "messages": [
            {
                "messageId": None,
                "status": "rejected",
                "error": {"code": "INVALID_TTL", "message": "ttl: 0 is out of range"},
            }
        ],
    }
    driver = Driver(lambda r: httpx.Response(200, json=answer), clock)
    with pytest.raises(MessageRejectedError) as caught:
        driver.run(core(clock).send_one(sms("+380501234567", "x", ttl=0)))
    assert caught.value.code == "INVALID_TTL" and caught.value.entry.index == 0


# -- the cache ---------------------------------------------------------------------------------


def _status(message_id: str, status: str) -> MessageStatus:
    return MessageStatus.from_json({"deliverystatus": status}, message_id)


def test_the_cache_keeps_final_statuses_and_expires_the_others() -> None:
    clock = Clock()
    cache = StatusCache(ttl=2.0, max_size=3, clock=clock)
    cache.put(_status("a", "delivered"))
    cache.put(_status("b", "processing"))
    assert cache.get("b") is not None and cache.get("b", final_only=True) is None
    assert cache.get("a", final_only=True) is not None
    clock.now += 2.5
    assert cache.get("b") is None
    assert cache.get("a") is not None
    cache.put(_status("a", "processing"))  # a late, older answer
    assert cache.get("a", final_only=True) is not None
    for mid in "cde":
        cache.put(_status(mid, "delivered"))
    assert len(cache) == 3 and cache.get("a") is None  # least recently used went first


# -- builders and models ---------------------------------------------------------------------


def test_builders_spell_the_wire_format() -> None:
    to = "+380501234567"
    assert viber_promo(
        to,
        "Sale",
        sender="Shop",
        image="https://e.com/i.png",
        button=Button("Go", "https://e.com"),
        fallback=sms(None, "Sale by SMS"),
        customer_message_id="c1",
        ttl=600,
    ).to_json() == {
        "type": "viber_promo",
        "from": "Shop",
        "to": to,
        "text": "Sale",
        "customerMessageId": "c1",
        "ttl": 600,
        "messageData": {
            "img": "https://e.com/i.png",
            "buttonText": "Go",
            "buttonAction": "https://e.com",
        },
        "fallback": [{"type": "sms", "text": "Sale by SMS"}],
    }
    assert viber_trans(to, file_url="https://e.com/a.pdf").to_json()["messageData"] == {
        "fileUrl": "https://e.com/a.pdf",
        "fileType": "pdf",
    }
    item = CarouselItem("T", "https://e.com/i.png", Button("B", "https://e.com"))
    assert viber_carousel(to, [item]).to_json()["messageData"] == {
        "carousel": {
            "items": [
                {
                    "title": "T",
                    "imageUrl": "https://e.com/i.png",
                    "primaryButton": {"text": "B", "url": "https://e.com"},
                }
            ]
        }
    }
    assert viber_survey(to, "Q?", ["y", "n"]).to_json()["messageData"] == {
        "survey": {"options": ["y", "n"]}
    }
    assert viber_otp(to, code="0042", validity=60).to_json()["messageData"] == {
        "code": "0042",
        "validity": 60,
    }
    assert rcs(to, "hi", media_url="https://e.com/v.mp4", media_type="video").to_json()[
        "messageData"
    ] == {"media": {"url": "https://e.com/v.mp4", "type": "video"}}
    assert flashcall(to, "+380441234567").to_json() == {
        "type": "flashcall",
        "to": to,
        "messageData": {"callerId": "+380441234567"},
    }
    chained = viber_otp(to, code="1234", validity=60).with_fallback(sms(None, "1234"))
    assert chained.to_json()["fallback"] == [{"type": "sms", "text": "1234"}]
    assert Message("sms", extra={"callbackUrl": "https://e.com/cb"}).to_json() == {
        "type": "sms",
        "callbackUrl": "https://e.com/cb",
    }


def test_rcs_buttons_spell_the_action_as_an_object() -> None:
    event = {
        "title": "Visit",
        "startTime": "2025-01-25T14:00:00Z",
        "endTime": "2025-01-25T15:00:00Z",
    }
    buttons = [
        RcsButton("Shop", url="https://e.com/sale"),
        RcsButton("Call", "dial", extra={"phoneNumber": "+380441234567"}),
        RcsButton("Here", "shareLocation"),
        RcsButton("Save", "createCalendarEvent", extra=event),
    ]
    assert rcs("+380501234567", "hi", buttons=buttons).to_json()["messageData"] == {
        "buttons": [
            {"text": "Shop", "action": {"type": "openUrl", "url": "https://e.com/sale"}},
            {"text": "Call", "action": {"type": "dial", "phoneNumber": "+380441234567"}},
            {"text": "Here", "action": {"type": "shareLocation"}},
            {"text": "Save", "action": {"type": "createCalendarEvent", **event}},
        ]
    }


def test_send_result_from_json() -> None:
    result = SendResult.from_json(
        {
            "messagelistId": 9,
            "messages": [
                {"messageId": "a", "status": "accepted", "parts": 2, "to": "+1"},
                {"messageId": None, "status": "rejected", "error": {"code": "C", "message": "m"}},
            ],
        }
    )
    assert result.message_ids == ["a"]
    assert [e.error_code for e in result.rejected] == ["C"]
    with pytest.raises(ProtocolError):
        SendResult.from_json({"messagelistId": 9, "messages": [{"status": "accepted"}]})
    with pytest.raises(ProtocolError):
        SendResult.from_json({"messages": []})


def test_the_error_tree() -> None:
    assert issubclass(IdempotencyKeyReusedError, ValidationError)
    assert issubclass(MessageRejectedError, ValidationError)
    assert issubclass(DeliveryTimeoutError, TimeoutError)
    assert issubclass(RequestTimeoutError, TimeoutError)
    assert issubclass(TimeoutError, BatgateError) and issubclass(
        TimeoutError, builtins.TimeoutError
    )
    for error in (AuthenticationError, NotFoundError, RateLimitedError, ServerError, NetworkError):
        assert issubclass(error, BatgateError)
    assert str(NotFoundError("gone", code="NOT_FOUND", status_code=404)) == "gone (404 NOT_FOUND)"


def _error(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": code.lower()}}
