"""SPEC §2 send and §3 status: every message type, SMS parts, per-message rejections."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

TO = "+380501234567"
IMG = "https://example.com/img/banner.png"
URL = "https://example.com/shop"


def _card(n: int, secondary: bool = False) -> dict:
    card = {
        "title": f"Item {n}",
        "imageUrl": f"https://example.com/img/{n}.jpg",
        "primaryButton": {"text": "Buy", "url": f"https://example.com/buy/{n}"},
    }
    if secondary:
        card["secondaryButton"] = {"text": "Details", "url": f"https://example.com/item/{n}"}
    return card


# (message without from/to, channel that carries it)
TYPES = [
    pytest.param({"type": "sms", "text": "Hello from batgate"}, "sms", id="sms"),
    pytest.param(
        {
            "type": "viber_promo",
            "text": "Spring sale: -20%",
            "messageData": {"img": IMG, "buttonText": "Shop now", "buttonAction": URL},
        },
        "viber",
        id="viber_promo",
    ),
    pytest.param(
        {
            "type": "viber_promo",
            "messageData": {"image": IMG, "button": {"text": "Shop now", "url": URL}},
        },
        "viber",
        id="viber_promo-short-form-image-only",
    ),
    pytest.param(
        {
            "type": "viber_promo",
            "text": "Watch this",
            "messageData": {
                "video": "https://example.com/v.mp4",
                "thumbnail": "https://example.com/t.jpg",
                "fileSize": 1048576,
                "duration": 30,
            },
        },
        "viber",
        id="viber_promo-video",
    ),
    pytest.param(
        {
            "type": "viber_trans",
            "text": "Your invoice",
            "messageData": {
                "fileUrl": "https://example.com/invoice.pdf",
                "fileName": "invoice.pdf",
                "fileType": "pdf",
            },
        },
        "viber",
        id="viber_trans",
    ),
    pytest.param(
        {"type": "viber_trans", "text": "Your parcel has shipped"}, "viber", id="viber_trans-text"
    ),
    pytest.param(
        {
            "type": "viber_carousel",
            "text": "New arrivals",
            "messageData": {"carousel": {"items": [_card(1), _card(2, secondary=True)]}},
        },
        "viber",
        id="viber_carousel",
    ),
    pytest.param(
        {
            "type": "viber_survey",
            "text": "How was your delivery?",
            "messageData": {"survey": {"options": ["Great", "OK", "Bad"]}},
        },
        "viber",
        id="viber_survey",
    ),
    pytest.param(
        {
            "type": "viber_otp",
            "messageData": {
                "templateId": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                "templateLang": "en",
                "templateParams": {"code": "482913"},
            },
        },
        "viber",
        id="viber_otp-template",
    ),
    pytest.param(
        {"type": "viber_otp", "messageData": {"code": "482913", "validity": 300}},
        "viber",
        id="viber_otp-code",
    ),
    pytest.param(
        {
            "type": "rcs",
            "text": "Your table is booked",
            "messageData": {
                "media": {"url": IMG, "type": "image/png"},
                "buttons": [
                    {"text": "Open", "action": {"type": "openUrl", "url": URL}},
                    {
                        "text": "Call us",
                        "action": {"type": "dial", "phoneNumber": "+380441234567"},
                    },
                    {"text": "Share location", "action": {"type": "shareLocation"}},
                    {
                        "text": "Add to calendar",
                        "action": {
                            "type": "createCalendarEvent",
                            "title": "Dinner",
                            "startTime": "2026-12-24T19:00:00+02:00",
                            "endTime": "2026-12-24T21:00:00+02:00",
                        },
                    },
                ],
            },
        },
        "rcs",
        id="rcs",
    ),
    pytest.param(
        {
            "type": "rcs",
            "text": "Pick one",
            "messageData": {
                "carousel": {
                    "cards": [
                        {"media": {"url": IMG, "type": "image/png"}, "title": "A"},
                        {
                            "media": {"url": IMG, "type": "image/png"},
                            "buttons": [
                                {"text": "Open", "action": {"type": "openUrl", "url": URL}}
                            ],
                        },
                    ]
                }
            },
        },
        "rcs",
        id="rcs-carousel",
    ),
    pytest.param(
        {"type": "flashcall", "messageData": {"callerId": "+380441234567"}},
        "flashcall",
        id="flashcall",
    ),
]


@pytest.mark.parametrize(("message", "channel"), TYPES)
def test_every_type_is_accepted_and_delivered(fast_server, alice, message, channel):
    sent = {"from": "batgate", "to": TO, "customerMessageId": "cm-42", **message}

    entry = fast_server.send_one(alice, sent)

    assert isinstance(entry["messageId"], str) and entry["messageId"]
    assert entry["parts"] == 1
    assert entry["customerMessageId"] == "cm-42"
    assert entry["to"] == TO
    assert isinstance(entry["messagelistId"], int)

    trace = fast_server.wait_final(alice, entry["messageId"])
    final = trace.final
    assert final["deliverystatus"] == "delivered", trace.statuses
    assert final["messagelistId"] == entry["messagelistId"]
    assert final["messageId"] == entry["messageId"]
    assert final["partscount"] == 1
    assert final["cost"] == pytest.approx(fast_server.rates[channel])
    trace.assert_walk("delivered")
    for doc in trace.docs:
        assert set(doc) >= {"messagelistId", "messageId", "deliverystatus", "partscount"}
        assert isinstance(doc["partscount"], int)


@pytest.mark.parametrize(
    ("caller_id", "ttl", "pattern"),
    [
        pytest.param("+380441234567", 600, "***234567", id="ua-with-ttl"),
        pytest.param("+14155550123", None, "***550123", id="us-default-ttl"),
    ],
)
def test_flashcall_entry_has_caller_pattern_and_ttl(fast_server, alice, caller_id, ttl, pattern):
    message = {"from": "batgate", "to": TO, "type": "flashcall"}
    message["messageData"] = {"callerId": caller_id}
    if ttl is not None:
        message["ttl"] = ttl

    entry = fast_server.send_one(alice, message)

    assert entry["callerId"] == caller_id
    assert entry["pattern"] == pattern
    assert isinstance(entry["ttl"], int)
    if ttl is not None:
        assert entry["ttl"] == ttl
    else:
        assert entry["ttl"] > 0


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        pytest.param("a" * 160, 1, id="gsm-160"),
        pytest.param("a" * 161, 2, id="gsm-161"),
        pytest.param("a" * 306, 2, id="gsm-306"),
        pytest.param("a" * 307, 3, id="gsm-307"),
        pytest.param("€" * 80, 1, id="gsm-extension-80x2-septets"),
        pytest.param("€" * 81, 2, id="gsm-extension-81x2-septets"),
        pytest.param("a" * 152 + "€" + "a" * 10, 2, id="gsm-extension-not-split"),
        pytest.param("ж" * 70, 1, id="ucs2-70"),
        pytest.param("ж" * 71, 2, id="ucs2-71"),
        pytest.param("ж" * 134, 2, id="ucs2-134"),
        pytest.param("ж" * 135, 3, id="ucs2-135"),
        pytest.param("😀" * 35, 1, id="emoji-35-is-70-units"),
        pytest.param("😀" * 36, 2, id="emoji-36"),
        pytest.param("a" * 153 * 10, 10, id="gsm-10-parts-maximum"),
    ],
)
def test_sms_parts(fast_server, alice, text, parts):
    entry = fast_server.send_one(alice, {"from": "batgate", "to": TO, "type": "sms", "text": text})

    assert entry["parts"] == parts
    assert fast_server.status(alice, entry["messageId"])["partscount"] == parts


def test_multipart_sms_costs_rate_times_parts(fast_server, alice):
    entry = fast_server.send_one(
        alice, {"from": "batgate", "to": TO, "type": "sms", "text": "a" * 161}
    )

    final = fast_server.wait_final(alice, entry["messageId"]).final

    assert final["deliverystatus"] == "delivered"
    assert final["partscount"] == 2
    assert final["cost"] == pytest.approx(2 * fast_server.rates["sms"])


GOOD = {"from": "batgate", "to": TO, "type": "sms", "text": "fine"}
NO_TEXT = {k: v for k, v in GOOD.items() if k != "text"}

# (bad message, expected error code)
BAD = [
    ({**GOOD, "to": "12345"}, "INVALID_RECIPIENT"),
    ({**GOOD, "to": "+380001234567"}, "INVALID_RECIPIENT"),
    ({"from": "batgate", "type": "sms", "text": "no recipient"}, "INVALID_RECIPIENT"),
    ({**GOOD, "from": "far too long sender"}, "INVALID_SENDER"),
    ({**GOOD, "from": ""}, "INVALID_SENDER"),
    ({**GOOD, "type": "fax"}, "INVALID_TYPE"),
    ({k: v for k, v in GOOD.items() if k != "type"}, "INVALID_TYPE"),
    (NO_TEXT, "MISSING_TEXT"),
    ({**NO_TEXT, "type": "rcs"}, "MISSING_TEXT"),
    ({**NO_TEXT, "type": "viber_promo"}, "MISSING_TEXT"),
    (
        {**NO_TEXT, "type": "viber_survey", "messageData": {"survey": {"options": ["a"]}}},
        "MISSING_TEXT",
    ),
    ({**GOOD, "text": "a" * (153 * 10 + 1)}, "MESSAGE_TOO_LONG"),
    ({**GOOD, "type": "rcs", "text": "a" * 3073}, "MESSAGE_TOO_LONG"),
    ({**GOOD, "text": "bad \ud800 surrogate"}, "INVALID_ENCODING"),
    ({**GOOD, "text": "nul \x00 inside"}, "INVALID_ENCODING"),
    ({**GOOD, "type": "flashcall", "messageData": {"callerId": "abc"}}, "INVALID_MESSAGE_DATA"),
    ({**GOOD, "type": "flashcall"}, "INVALID_MESSAGE_DATA"),
    (
        {**GOOD, "type": "viber_survey", "messageData": {"survey": {"options": []}}},
        "INVALID_MESSAGE_DATA",
    ),
    ({**GOOD, "type": "viber_promo", "messageData": {"img": "not a url"}}, "INVALID_MESSAGE_DATA"),
    ({**GOOD, "type": "viber_promo", "messageData": {"buttonText": "Go"}}, "INVALID_MESSAGE_DATA"),
    ({**GOOD, "type": "viber_otp", "messageData": {"templateId": "nope"}}, "INVALID_MESSAGE_DATA"),
    ({**GOOD, "ttl": 0}, "INVALID_TTL"),
    ({**GOOD, "ttl": 2_592_001}, "INVALID_TTL"),
    ({**GOOD, "ttl": "60"}, "INVALID_TTL"),
    ({**GOOD, "fallback": {"type": "sms", "text": "x"}}, "INVALID_FALLBACK"),
    ({**GOOD, "type": "viber_promo", "fallback": {"type": "fax"}}, "INVALID_FALLBACK"),
    (
        {
            **GOOD,
            "type": "viber_promo",
            "fallback": [{"type": "sms", "text": "x"}, {"type": "rcs", "text": "y"}],
        },
        "INVALID_FALLBACK",
    ),
    (
        {**GOOD, "type": "viber_promo", "fallback": {"type": "viber_trans", "text": "x"}},
        "INVALID_FALLBACK",
    ),
]


def test_mixed_batch_rejects_only_the_bad_ones_in_input_order(fast_server, alice):
    batch = []
    expected = []
    for n, (bad, code) in enumerate(BAD):
        batch.append({**GOOD, "customerMessageId": f"good-{n}"})
        expected.append(("accepted", None))
        batch.append({**bad, "customerMessageId": f"bad-{n}"})
        expected.append(("rejected", code))
    body = json.dumps({"messages": batch})  # ensure_ascii: the lone surrogate goes as \ud800

    response = fast_server.http.post(
        "/bat/messagelist",
        content=body,
        headers={**alice.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert isinstance(answer["messagelistId"], int)
    entries = answer["messages"]
    assert len(entries) == len(batch)
    got = [(e["status"], e.get("error", {}).get("code")) for e in entries]
    assert got == expected
    for sent, entry in zip(batch, entries, strict=True):
        assert entry["customerMessageId"] == sent["customerMessageId"]
        if entry["status"] == "rejected":
            assert entry["messageId"] is None
            assert set(entry["error"]) == {"code", "message"}
            assert isinstance(entry["error"]["message"], str) and entry["error"]["message"]
        else:
            assert isinstance(entry["messageId"], str)
            assert entry["to"] == TO
            status = fast_server.status(alice, entry["messageId"])
            assert status["messagelistId"] == answer["messagelistId"]


def test_bare_json_array_body(fast_server, alice):
    batch = [
        {**GOOD, "customerMessageId": "first"},
        {**GOOD, "to": "+380501230003", "customerMessageId": "second"},
    ]

    answer = fast_server.send(alice, {"messages": batch})
    bare = fast_server.http.post("/bat/messagelist", json=batch, headers=alice.headers)

    assert bare.status_code == 200, bare.text
    doc = bare.json()
    assert isinstance(doc["messagelistId"], int)
    assert doc["messagelistId"] != answer["messagelistId"]
    assert [e["customerMessageId"] for e in doc["messages"]] == ["first", "second"]
    assert [e["to"] for e in doc["messages"]] == [TO, "+380501230003"]
    assert all(e["status"] == "accepted" for e in doc["messages"])
    traces = fast_server.wait_all(alice, [e["messageId"] for e in doc["messages"]], timeout=30)
    assert {t.final["deliverystatus"] for t in traces.values()} == {"delivered"}


def _nested(depth: int) -> dict:
    data: dict = {"leaf": 1}
    for _ in range(depth):
        data = {"n": data}
    return data


# A message the server has to reject (or may store) without failing the whole request.
HOSTILE = [
    pytest.param(
        {**GOOD, "customerMessageId": "id-\ud800"},
        {"INVALID_MESSAGE_DATA"},
        id="lone-surrogate-in-customerMessageId",
    ),
    pytest.param({**GOOD, "to": "+38\ud800"}, {"INVALID_RECIPIENT"}, id="lone-surrogate-in-to"),
    pytest.param(
        {**GOOD, "type": "rcs", "messageData": {"extra": _nested(300)}},
        {None, "INVALID_MESSAGE_DATA"},
        id="messageData-nested-300-deep",
    ),
]


@pytest.mark.parametrize(("bad", "codes"), HOSTILE)
def test_one_bad_message_never_sinks_the_batch(fast_server, alice, bad, codes):
    body = json.dumps({"messages": [GOOD, bad, GOOD]})  # ensure_ascii keeps \ud800 escaped

    response = fast_server.http.post(
        "/bat/messagelist",
        content=body,
        headers={**alice.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 200, response.text
    first, middle, last = response.json()["messages"]
    assert first["status"] == last["status"] == "accepted"
    assert middle.get("error", {}).get("code") in codes, middle
