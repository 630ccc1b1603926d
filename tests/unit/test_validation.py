"""validate_message: tables of accepted and rejected messages (SPEC §2)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from batgate.client.messages import RcsButton, rcs
from batgate.domain.messages import ErrorCode, MessageType, NewMessage, Rejection
from batgate.domain.validation import Limits, validate_message

TO = "+380501234567"
OTHER_TO = "+447911123456"
LIMITS = Limits()
DROP = object()  # marks a key to remove from a base message

E = ErrorCode

SMS: dict[str, Any] = {"type": "sms", "from": "BatGate", "to": TO, "text": "Your code is 1234"}
PROMO: dict[str, Any] = {
    "type": "viber_promo",
    "from": "BatGate",
    "to": TO,
    "text": "Spring sale: -20% on everything",
    "messageData": {
        "img": "https://cdn.example.com/sale.png",
        "buttonText": "Shop now",
        "buttonAction": "https://shop.example.com/sale",
    },
}
TRANS: dict[str, Any] = {
    "type": "viber_trans",
    "from": "BatGate",
    "to": TO,
    "text": "Your invoice is attached",
    "messageData": {
        "fileUrl": "https://files.example.com/invoice-42.pdf",
        "fileName": "invoice-42.pdf",
        "fileType": "pdf",
    },
}
CAROUSEL_ITEM: dict[str, Any] = {
    "title": "Sneakers",
    "imageUrl": "https://cdn.example.com/sneakers.png",
    "primaryButton": {"text": "Buy", "url": "https://shop.example.com/sneakers"},
}
CAROUSEL: dict[str, Any] = {
    "type": "viber_carousel",
    "from": "BatGate",
    "to": TO,
    "messageData": {
        "carousel": {
            "items": [
                CAROUSEL_ITEM,
                {
                    "title": "Boots",
                    "imageUrl": "https://cdn.example.com/boots.png",
                    "primaryButton": {"text": "Buy", "url": "https://shop.example.com/boots"},
                    "secondaryButton": {"text": "More", "url": "https://shop.example.com/"},
                },
            ]
        }
    },
}
SURVEY: dict[str, Any] = {
    "type": "viber_survey",
    "from": "BatGate",
    "to": TO,
    "text": "How was your delivery?",
    "messageData": {"survey": {"options": ["Great", "OK", "Bad"]}},
}
OTP: dict[str, Any] = {
    "type": "viber_otp",
    "from": "BatGate",
    "to": TO,
    "messageData": {
        "templateId": "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
        "templateLang": "en",
        "templateParams": {"pin": "123456"},
    },
}
RCS: dict[str, Any] = {
    "type": "rcs",
    "from": "BatGate",
    "to": TO,
    "text": "Your parcel is on its way",
    "messageData": {
        "media": {"url": "https://cdn.example.com/parcel.png", "type": "image"},
        "buttons": [
            {"text": "Track", "action": {"type": "openUrl", "url": "https://track.example.com/42"}},
            {"text": "Call us", "action": {"type": "dial", "phoneNumber": "+380441234567"}},
        ],
    },
}
# The four button actions exactly as in SMSBAT's rcs.md ("Button Actions"; the dial
# number there is a placeholder, +380XXXXXXXXX).
OPEN_URL: dict[str, Any] = {
    "text": "Visit Website",
    "action": {"type": "openUrl", "url": "https://example.com"},
}
DIAL: dict[str, Any] = {"text": "Call Us", "action": {"type": "dial", "phoneNumber": TO}}
SHARE_LOCATION: dict[str, Any] = {"text": "Share Location", "action": {"type": "shareLocation"}}
CALENDAR: dict[str, Any] = {
    "text": "Add to Calendar",
    "action": {
        "type": "createCalendarEvent",
        "title": "Appointment",
        "startTime": "2025-01-25T14:00:00Z",
        "endTime": "2025-01-25T15:00:00Z",
    },
}


def action(button: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``button`` with its action's keys set or dropped."""
    return make(button, action=make(button["action"], **changes))


def buttons(*items: dict[str, Any]) -> dict[str, Any]:
    """The RCS message with these buttons."""
    return data(RCS, buttons=list(items))


FLASHCALL: dict[str, Any] = {
    "type": "flashcall",
    "from": "BatGate",
    "to": TO,
    "messageData": {"callerId": "+380441234567"},
}


def make(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with keys set (``from_`` for ``from``) or dropped."""
    raw = copy.deepcopy(base)
    for key, value in changes.items():
        key = key.rstrip("_")
        if value is DROP:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def data(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``base`` with its messageData keys set or dropped."""
    return make(base, messageData=make(base["messageData"], **changes))


def accepted(raw: dict[str, Any], limits: Limits = LIMITS) -> NewMessage:
    result = validate_message(raw, limits)
    assert isinstance(result, NewMessage), result
    return result


# --- accepted --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "mtype"),
    [
        pytest.param(SMS, MessageType.SMS, id="sms"),
        pytest.param(PROMO, MessageType.VIBER_PROMO, id="viber_promo"),
        pytest.param(TRANS, MessageType.VIBER_TRANS, id="viber_trans"),
        pytest.param(CAROUSEL, MessageType.VIBER_CAROUSEL, id="viber_carousel"),
        pytest.param(SURVEY, MessageType.VIBER_SURVEY, id="viber_survey"),
        pytest.param(OTP, MessageType.VIBER_OTP, id="viber_otp"),
        pytest.param(RCS, MessageType.RCS, id="rcs"),
        pytest.param(FLASHCALL, MessageType.FLASHCALL, id="flashcall"),
    ],
)
def test_valid_example_of_each_type(raw: dict[str, Any], mtype: MessageType) -> None:
    before = copy.deepcopy(raw)
    message = accepted(raw)
    step = message.primary
    assert (step.type, step.to, step.sender, step.ttl, step.parts) == (
        mtype,
        TO,
        "BatGate",
        LIMITS.default_ttl,
        1,
    )
    assert step.text == raw.get("text")
    assert step.message_data == raw.get("messageData")
    assert message.customer_message_id is None
    assert not message.has_fallback
    assert raw == before  # the input is never modified


@pytest.mark.parametrize(
    ("raw", "expected_text", "expected_data"),
    [
        pytest.param(
            data(PROMO, img=DROP, buttonText=DROP, buttonAction=DROP, image="https://x.io/a.png"),
            PROMO["text"],
            {"img": "https://x.io/a.png"},
            id="promo-short-image",
        ),
        pytest.param(
            data(
                PROMO,
                buttonText=DROP,
                buttonAction=DROP,
                button={"text": "Go", "url": "https://x.io/go"},
            ),
            PROMO["text"],
            {
                "img": "https://cdn.example.com/sale.png",
                "buttonText": "Go",
                "buttonAction": "https://x.io/go",
            },
            id="promo-short-button",
        ),
        pytest.param(
            make(PROMO, text=DROP, messageData={"video": "https://x.io/v.mp4", "duration": 30}),
            None,
            {"video": "https://x.io/v.mp4", "duration": 30},
            id="promo-video-only",
        ),
        pytest.param(
            make(PROMO, text="", messageData={"img": "https://x.io/a.png"}),
            None,
            {"img": "https://x.io/a.png"},
            id="promo-empty-text-with-image",
        ),
        pytest.param(make(PROMO, messageData=DROP), PROMO["text"], None, id="promo-text-only"),
        pytest.param(make(TRANS, text=DROP), None, TRANS["messageData"], id="trans-file-only"),
        pytest.param(make(TRANS, messageData=DROP), TRANS["text"], None, id="trans-text-only"),
        pytest.param(
            make(OTP, messageData={"code": "0042", "validity": 300}),
            None,
            {"code": "0042", "validity": 300},
            id="otp-code-form",
        ),
        pytest.param(
            data(OTP, templateParams=DROP),
            None,
            data(OTP, templateParams=DROP)["messageData"],
            id="otp-template-without-params",
        ),
        pytest.param(make(RCS, messageData=DROP), RCS["text"], None, id="rcs-text-only"),
        pytest.param(
            make(
                RCS,
                messageData={
                    "carousel": {
                        "cards": [
                            {"title": "A", "media": {"url": "https://x.io/a.png", "type": "image"}},
                            {
                                "title": "B",
                                "buttons": [SHARE_LOCATION],
                            },
                        ]
                    }
                },
            ),
            RCS["text"],
            {
                "carousel": {
                    "cards": [
                        {"title": "A", "media": {"url": "https://x.io/a.png", "type": "image"}},
                        {"title": "B", "buttons": [SHARE_LOCATION]},
                    ]
                }
            },
            id="rcs-carousel",
        ),
        pytest.param(
            buttons(OPEN_URL, DIAL, SHARE_LOCATION, CALENDAR),
            RCS["text"],
            {**RCS["messageData"], "buttons": [OPEN_URL, DIAL, SHARE_LOCATION, CALENDAR]},
            id="rcs-every-documented-action",
        ),
        pytest.param(
            make(
                RCS,
                messageData={
                    "carousel": {
                        "cards": [
                            {"title": "A", "buttons": [OPEN_URL, CALENDAR]},
                            {"title": "B", "buttons": [DIAL, SHARE_LOCATION]},
                        ]
                    }
                },
            ),
            RCS["text"],
            {
                "carousel": {
                    "cards": [
                        {"title": "A", "buttons": [OPEN_URL, CALENDAR]},
                        {"title": "B", "buttons": [DIAL, SHARE_LOCATION]},
                    ]
                }
            },
            id="rcs-carousel-card-actions",
        ),
        pytest.param(
            buttons(
                action(
                    CALENDAR,
                    startTime="2025-01-25T16:00:00+02:00",
                    endTime="2025-01-25T14:00:00.5Z",
                    description="Bring your passport",
                )
            ),
            RCS["text"],
            {
                **RCS["messageData"],
                "buttons": [
                    action(
                        CALENDAR,
                        startTime="2025-01-25T16:00:00+02:00",
                        endTime="2025-01-25T14:00:00.5Z",
                        description="Bring your passport",
                    )
                ],
            },
            id="rcs-calendar-offsets-and-extra-keys-kept",
        ),
        pytest.param(
            buttons(action(CALENDAR, endTime=CALENDAR["action"]["startTime"])),
            RCS["text"],
            {
                **RCS["messageData"],
                "buttons": [action(CALENDAR, endTime=CALENDAR["action"]["startTime"])],
            },
            id="rcs-calendar-zero-length",
        ),
        pytest.param(
            buttons(action(CALENDAR, endTime=DROP)),
            RCS["text"],
            {**RCS["messageData"], "buttons": [action(CALENDAR, endTime=DROP)]},
            id="rcs-calendar-without-end",
        ),
        pytest.param(
            data(
                RCS,
                media={
                    "url": "https://x.io/demo.mp4",
                    "type": "video/mp4",
                    "thumbnail": "https://x.io/thumbnail.jpg",
                },
            ),
            RCS["text"],
            {
                **RCS["messageData"],
                "media": {
                    "url": "https://x.io/demo.mp4",
                    "type": "video/mp4",
                    "thumbnail": "https://x.io/thumbnail.jpg",
                },
            },
            id="rcs-video-thumbnail",
        ),
        pytest.param(
            data(PROMO, futureField={"x": 1}),
            PROMO["text"],
            {**PROMO["messageData"], "futureField": {"x": 1}},
            id="unknown-messageData-keys-kept",
        ),
        pytest.param(
            make(SMS, messageData={"note": "x"}), SMS["text"], {"note": "x"}, id="sms-data-kept"
        ),
        pytest.param(make(SMS, text="Привіт 👋"), "Привіт 👋", None, id="sms-unicode-text"),
    ],
)
def test_content_variants(
    raw: dict[str, Any], expected_text: str | None, expected_data: dict[str, Any] | None
) -> None:
    before = copy.deepcopy(raw)
    step = accepted(raw).primary
    assert step.text == expected_text
    assert step.message_data == expected_data
    assert raw == before


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        pytest.param("x" * 160, 1, id="gsm-160"),
        pytest.param("x" * 161, 2, id="gsm-161"),
        pytest.param("x" * 1530, 10, id="gsm-1530-max"),
        pytest.param("ї" * 70, 1, id="ucs2-70"),
        pytest.param("ї" * 670, 10, id="ucs2-670-max"),
    ],
)
def test_sms_parts(text: str, parts: int) -> None:
    assert accepted(make(SMS, text=text)).primary.parts == parts


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [
        pytest.param(1, 1, id="1"),
        pytest.param(2_592_000, 2_592_000, id="2592000"),
        pytest.param(DROP, 86_400, id="absent-default"),
        pytest.param(None, 86_400, id="null-default"),
    ],
)
def test_ttl_accepted(ttl: Any, expected: int) -> None:
    assert accepted(make(SMS, ttl=ttl)).primary.ttl == expected


def test_limits_are_applied() -> None:
    limits = Limits(max_parts=1, default_ttl=60, max_ttl=3600)
    assert accepted(make(SMS, text="x" * 160), limits).primary.ttl == 60
    assert validate_message(make(SMS, text="x" * 161), limits) == Rejection(
        E.MESSAGE_TOO_LONG, "text: needs 2 SMS parts, more than the maximum of 1"
    )
    rejected = validate_message(make(SMS, ttl=3601), limits)
    assert isinstance(rejected, Rejection) and rejected.code is E.INVALID_TTL


@pytest.mark.parametrize(
    "sender",
    [
        pytest.param("B", id="one-letter"),
        pytest.param("BatGate2025", id="eleven-alnum"),
        pytest.param("1Bat", id="digits-then-letter"),
        pytest.param("+380441234567", id="e164"),
        pytest.param("12345", id="short-code"),
        pytest.param("380441234567", id="long-number-no-plus"),
        pytest.param("123456789012345", id="fifteen-digits"),
    ],
)
def test_sender_accepted(sender: str) -> None:
    assert accepted(make(SMS, from_=sender)).primary.sender == sender


def test_customer_message_id_and_callback_url() -> None:
    message = accepted(
        make(SMS, customerMessageId="c" * 64, callbackUrl="https://hooks.example.com/dlr?x=1")
    )
    assert message.customer_message_id == "c" * 64
    assert message.callback_url == "https://hooks.example.com/dlr?x=1"


def test_sdk_rcs_buttons_are_accepted() -> None:
    event = {k: v for k, v in CALENDAR["action"].items() if k != "type"}
    sdk_buttons = [
        RcsButton("Visit Website", url="https://example.com"),
        RcsButton("Call Us", "dial", extra={"phoneNumber": TO}),
        RcsButton("Share Location", "shareLocation"),
        RcsButton("Add to Calendar", "createCalendarEvent", extra=event),
    ]
    built = rcs(TO, "hi", sender="BatGate", buttons=sdk_buttons).to_json()
    step = accepted(built).primary
    assert step.message_data == {"buttons": [OPEN_URL, DIAL, SHARE_LOCATION, CALENDAR]}


# --- rejected --------------------------------------------------------------------

LONG_URL = "https://x.io/" + "a" * 2036  # 2049 characters

REJECTED = [
    # INVALID_RECIPIENT
    pytest.param(make(SMS, to=DROP), E.INVALID_RECIPIENT, "to: is required", id="to-missing"),
    pytest.param(make(SMS, to=None), E.INVALID_RECIPIENT, "to: is required", id="to-null"),
    pytest.param(
        make(SMS, to=380501234567), E.INVALID_RECIPIENT, "to: must be a string", id="to-number"
    ),
    pytest.param(
        make(SMS, to="+123"),
        E.INVALID_RECIPIENT,
        "to: '+123' is not a valid E.164 number",
        id="to-too-short",
    ),
    pytest.param(make(SMS, to="380501234567"), E.INVALID_RECIPIENT, "to: ", id="to-no-plus"),
    pytest.param(make(SMS, to="+38 050 123 4567"), E.INVALID_RECIPIENT, "to: ", id="to-spaces"),
    pytest.param(make(SMS, to="+10000000000"), E.INVALID_RECIPIENT, "to: ", id="to-no-such-number"),
    pytest.param(
        make(SMS, to="+4407911123456"), E.INVALID_RECIPIENT, "to: ", id="to-national-prefix"
    ),
    pytest.param(make(SMS, to=[TO]), E.INVALID_RECIPIENT, "to: ", id="to-array"),
    # INVALID_SENDER
    pytest.param(make(SMS, from_=DROP), E.INVALID_SENDER, "from: is required", id="from-missing"),
    pytest.param(make(SMS, from_=""), E.INVALID_SENDER, "from: '' ", id="from-empty"),
    pytest.param(make(SMS, from_="BatGate2025X"), E.INVALID_SENDER, "from: ", id="from-12-chars"),
    pytest.param(make(SMS, from_="Bat Gate"), E.INVALID_SENDER, "from: ", id="from-space"),
    pytest.param(make(SMS, from_="Bat-Gate"), E.INVALID_SENDER, "from: ", id="from-dash"),
    pytest.param(make(SMS, from_="Bät"), E.INVALID_SENDER, "from: ", id="from-non-ascii"),
    pytest.param(make(SMS, from_="+1234567"), E.INVALID_SENDER, "from: ", id="from-plus-7-digits"),
    pytest.param(
        make(SMS, from_="1234567890123456"), E.INVALID_SENDER, "from: ", id="from-16-digits"
    ),
    pytest.param(make(SMS, from_=12345), E.INVALID_SENDER, "from: must be", id="from-number"),
    # INVALID_TYPE
    pytest.param(make(SMS, type=DROP), E.INVALID_TYPE, "type: is required", id="type-missing"),
    pytest.param(make(SMS, type="SMS"), E.INVALID_TYPE, "type: 'SMS' ", id="type-uppercase"),
    pytest.param(make(SMS, type="mms"), E.INVALID_TYPE, "type: 'mms' ", id="type-unknown"),
    pytest.param(make(SMS, type=1), E.INVALID_TYPE, "type: 1 ", id="type-number"),
    pytest.param(make(SMS, type=["sms"]), E.INVALID_TYPE, "type: array ", id="type-array"),
    # MISSING_TEXT
    pytest.param(make(SMS, text=DROP), E.MISSING_TEXT, "text: is required", id="sms-no-text"),
    pytest.param(make(SMS, text=""), E.MISSING_TEXT, "text: is required", id="sms-empty-text"),
    pytest.param(make(SMS, text=" \n"), E.MISSING_TEXT, "text: is required", id="sms-blank"),
    pytest.param(make(SMS, text=1234), E.MISSING_TEXT, "text: must be a string", id="sms-number"),
    pytest.param(make(RCS, text=DROP), E.MISSING_TEXT, "text: ", id="rcs-no-text"),
    pytest.param(make(SURVEY, text=DROP), E.MISSING_TEXT, "text: ", id="survey-no-text"),
    pytest.param(
        make(PROMO, text=DROP, messageData={"buttonText": "Go", "buttonAction": "https://x.io"}),
        E.MISSING_TEXT,
        "text: viber_promo needs",
        id="promo-nothing-to-show",
    ),
    pytest.param(
        make(PROMO, text=DROP, messageData=DROP), E.MISSING_TEXT, "text: ", id="promo-empty"
    ),
    pytest.param(
        make(TRANS, text=DROP, messageData=DROP),
        E.MISSING_TEXT,
        "text: viber_trans needs",
        id="trans-no-text-no-file",
    ),
    pytest.param(make(PROMO, text=["hi"]), E.MISSING_TEXT, "text: must be", id="promo-text-array"),
    # MESSAGE_TOO_LONG
    pytest.param(make(SMS, text="x" * 1531), E.MESSAGE_TOO_LONG, "text: ", id="sms-gsm-11-parts"),
    pytest.param(make(SMS, text="ї" * 671), E.MESSAGE_TOO_LONG, "text: ", id="sms-ucs2-11-parts"),
    pytest.param(make(PROMO, text="x" * 1001), E.MESSAGE_TOO_LONG, "text: ", id="viber-1001"),
    pytest.param(make(RCS, text="x" * 3073), E.MESSAGE_TOO_LONG, "text: ", id="rcs-3073"),
    # INVALID_ENCODING
    pytest.param(
        make(SMS, text="a\ud800b"), E.INVALID_ENCODING, "text: ", id="lone-high-surrogate"
    ),
    pytest.param(make(PROMO, text="\udfff"), E.INVALID_ENCODING, "text: ", id="lone-low-surrogate"),
    pytest.param(make(SMS, text="a\x00b"), E.INVALID_ENCODING, "text: contains a NUL", id="nul"),
    pytest.param(make(RCS, text="ї\x00"), E.INVALID_ENCODING, "text: ", id="nul-non-ascii"),
    # INVALID_MESSAGE_DATA
    pytest.param(make(SMS, messageData=[1]), E.INVALID_MESSAGE_DATA, "messageData: ", id="array"),
    pytest.param(make(PROMO, messageData="x"), E.INVALID_MESSAGE_DATA, "messageData: ", id="str"),
    pytest.param(
        data(PROMO, img="ftp://x.io/a.png"), E.INVALID_MESSAGE_DATA, "messageData.img: ", id="ftp"
    ),
    pytest.param(data(PROMO, img="/a.png"), E.INVALID_MESSAGE_DATA, "messageData.img: ", id="rel"),
    pytest.param(
        data(PROMO, img="https://x.io/a b.png"), E.INVALID_MESSAGE_DATA, "messageData.img", id="sp"
    ),
    pytest.param(data(PROMO, img=LONG_URL), E.INVALID_MESSAGE_DATA, "messageData.img: ", id="2049"),
    pytest.param(
        data(PROMO, buttonAction=DROP), E.INVALID_MESSAGE_DATA, "messageData: a button", id="label"
    ),
    pytest.param(
        data(PROMO, buttonText=DROP, buttonAction=DROP, button={"text": "Go"}),
        E.INVALID_MESSAGE_DATA,
        "messageData.button.url: ",
        id="short-button-no-url",
    ),
    pytest.param(
        data(PROMO, image="https://x.io/b.png"),
        E.INVALID_MESSAGE_DATA,
        "messageData: give img or image",
        id="img-and-image",
    ),
    pytest.param(
        data(PROMO, duration=0), E.INVALID_MESSAGE_DATA, "messageData.duration", id="duration-0"
    ),
    pytest.param(
        data(TRANS, fileType="docx"), E.INVALID_MESSAGE_DATA, "messageData.fileType", id="docx"
    ),
    pytest.param(
        data(TRANS, fileUrl=DROP), E.INVALID_MESSAGE_DATA, "messageData.fileUrl", id="name-no-url"
    ),
    pytest.param(
        make(CAROUSEL, messageData=DROP), E.INVALID_MESSAGE_DATA, "messageData: ", id="car-no-data"
    ),
    pytest.param(
        make(CAROUSEL, messageData={"carousel": {"items": [CAROUSEL_ITEM]}}),
        E.INVALID_MESSAGE_DATA,
        "messageData.carousel.items: has 1",
        id="carousel-1-item",
    ),
    pytest.param(
        make(CAROUSEL, messageData={"carousel": {"items": [CAROUSEL_ITEM] * 6}}),
        E.INVALID_MESSAGE_DATA,
        "messageData.carousel.items: has 6",
        id="carousel-6-items",
    ),
    pytest.param(
        make(
            CAROUSEL,
            messageData={"carousel": {"items": [CAROUSEL_ITEM, make(CAROUSEL_ITEM, title="")]}},
        ),
        E.INVALID_MESSAGE_DATA,
        "messageData.carousel.items[1].title",
        id="carousel-empty-title",
    ),
    pytest.param(
        make(
            CAROUSEL,
            messageData={
                "carousel": {"items": [CAROUSEL_ITEM, make(CAROUSEL_ITEM, primaryButton=DROP)]}
            },
        ),
        E.INVALID_MESSAGE_DATA,
        "messageData.carousel.items[1].primaryButton",
        id="carousel-no-primary-button",
    ),
    pytest.param(
        make(SURVEY, messageData={"survey": {"options": []}}),
        E.INVALID_MESSAGE_DATA,
        "messageData.survey.options: has 0",
        id="survey-0-options",
    ),
    pytest.param(
        make(SURVEY, messageData={"survey": {"options": list("abcdef")}}),
        E.INVALID_MESSAGE_DATA,
        "messageData.survey.options: has 6",
        id="survey-6-options",
    ),
    pytest.param(
        make(SURVEY, messageData={"survey": {"options": ["a", 3]}}),
        E.INVALID_MESSAGE_DATA,
        "messageData.survey.options[1]",
        id="survey-option-number",
    ),
    pytest.param(
        make(SURVEY, messageData={"survey": {"options": ["a", ""]}}),
        E.INVALID_MESSAGE_DATA,
        "messageData.survey.options[1]",
        id="survey-option-empty",
    ),
    pytest.param(
        data(OTP, templateId="1234"), E.INVALID_MESSAGE_DATA, "messageData.templateId", id="uuid"
    ),
    pytest.param(
        data(OTP, templateLang=DROP), E.INVALID_MESSAGE_DATA, "messageData.templateLang", id="lang"
    ),
    pytest.param(
        data(OTP, templateParams=[1]),
        E.INVALID_MESSAGE_DATA,
        "messageData.templateParams",
        id="otp-params-array",
    ),
    pytest.param(
        make(OTP, messageData={}), E.INVALID_MESSAGE_DATA, "messageData: ", id="otp-neither-form"
    ),
    pytest.param(
        data(OTP, code="1234", validity=60),
        E.INVALID_MESSAGE_DATA,
        "messageData: give either",
        id="otp-both-forms",
    ),
    pytest.param(
        make(OTP, messageData={"code": "12a4", "validity": 60}),
        E.INVALID_MESSAGE_DATA,
        "messageData.code",
        id="otp-code-letters",
    ),
    pytest.param(
        make(OTP, messageData={"code": 1234, "validity": 60}),
        E.INVALID_MESSAGE_DATA,
        "messageData.code",
        id="otp-code-number",
    ),
    pytest.param(
        make(OTP, messageData={"code": "1234", "validity": 0}),
        E.INVALID_MESSAGE_DATA,
        "messageData.validity",
        id="otp-validity-0",
    ),
    pytest.param(
        make(OTP, messageData={"code": "1234"}),
        E.INVALID_MESSAGE_DATA,
        "messageData.validity",
        id="otp-validity-missing",
    ),
    pytest.param(
        buttons(action(DIAL, type="call")),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.type: 'call' is not one of openUrl, dial, "
        "shareLocation, createCalendarEvent",
        id="rcs-unknown-action-type",
    ),
    pytest.param(
        buttons(action(OPEN_URL, type="OpenUrl")),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.type: 'OpenUrl' ",
        id="rcs-action-type-case",
    ),
    pytest.param(
        buttons(action(SHARE_LOCATION, type=DROP)),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.type: null ",
        id="rcs-action-without-type",
    ),
    pytest.param(
        buttons(make(OPEN_URL, action=DROP)),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action: must be an object, got null",
        id="rcs-button-without-action",
    ),
    pytest.param(
        buttons({"action": "openUrl", "text": "Shop", "url": "https://x.io"}),
        E.INVALID_MESSAGE_DATA,
        'messageData.buttons[0].action: must be an object such as {"type": "openUrl", ...}',
        id="rcs-action-flat-string",
    ),
    pytest.param(
        buttons(make(OPEN_URL, action=["openUrl"])),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action: must be an object, got array",
        id="rcs-action-array",
    ),
    pytest.param(
        buttons(make(OPEN_URL, action=1)),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action: must be an object, got number",
        id="rcs-action-number",
    ),
    pytest.param(
        buttons(DIAL, DIAL, DIAL, DIAL, DIAL),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons: has 5",
        id="rcs-5-buttons",
    ),
    pytest.param(
        buttons(action(OPEN_URL, url=DROP)),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.url: must be a URL string, got null",
        id="rcs-open-url-without-url",
    ),
    pytest.param(
        buttons({"text": "Shop", "action": {"type": "openUrl"}, "url": "https://x.io"}),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.url: ",
        id="rcs-open-url-url-beside-the-action",
    ),
    pytest.param(
        buttons(action(OPEN_URL, url="javascript:alert(1)")),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.url: ",
        id="rcs-open-url-not-http",
    ),
    pytest.param(
        buttons(action(DIAL, phoneNumber=DROP)),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.phoneNumber: null ",
        id="rcs-dial-without-number",
    ),
    pytest.param(
        buttons(action(DIAL, phoneNumber="+380XXXXXXXXX")),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.phoneNumber: '+380XXXXXXXXX' is not in E.164 form",
        id="rcs-dial-placeholder-number",
    ),
    pytest.param(
        buttons(action(CALENDAR, title=DROP)),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.title: ",
        id="rcs-calendar-without-title",
    ),
    pytest.param(
        buttons(action(CALENDAR, startTime=DROP)),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.startTime: is required",
        id="rcs-calendar-without-start",
    ),
    pytest.param(
        buttons(action(CALENDAR, startTime="2025-01-25T14:00:00")),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.startTime: '2025-01-25T14:00:00' is not a date",
        id="rcs-calendar-time-without-offset",
    ),
    pytest.param(
        buttons(action(CALENDAR, startTime="2025-02-30T14:00:00Z")),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.startTime: ",
        id="rcs-calendar-no-such-date",
    ),
    pytest.param(
        buttons(action(CALENDAR, endTime=1737817200)),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.endTime: 1737817200 is not a date",
        id="rcs-calendar-epoch-number",
    ),
    pytest.param(
        buttons(action(CALENDAR, endTime="2025-01-25T13:59:59Z")),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].action.endTime: '2025-01-25T13:59:59Z' is before startTime",
        id="rcs-calendar-ends-before-start",
    ),
    pytest.param(
        buttons(make(SHARE_LOCATION, text=DROP)),
        E.INVALID_MESSAGE_DATA,
        "messageData.buttons[0].text",
        id="rcs-button-without-text",
    ),
    pytest.param(
        data(RCS, buttons=DROP, carousel={"cards": [{"title": "A"}, {"buttons": [{"text": "x"}]}]}),
        E.INVALID_MESSAGE_DATA,
        "messageData.carousel.cards[1].buttons[0].action: must be an object, got null",
        id="rcs-carousel-card-button-without-action",
    ),
    pytest.param(
        data(
            RCS,
            buttons=DROP,
            carousel={"cards": [{"title": "A"}, {"buttons": [action(DIAL, type="call")]}]},
        ),
        E.INVALID_MESSAGE_DATA,
        "messageData.carousel.cards[1].buttons[0].action.type: 'call' ",
        id="rcs-carousel-card-unknown-action-type",
    ),
    pytest.param(
        data(RCS, media={"url": "https://x.io/v.mp4", "type": "video/mp4", "thumbnail": "t.jpg"}),
        E.INVALID_MESSAGE_DATA,
        "messageData.media.thumbnail: ",
        id="rcs-media-thumbnail-not-url",
    ),
    pytest.param(
        data(RCS, media={"type": "image"}),
        E.INVALID_MESSAGE_DATA,
        "messageData.media.url",
        id="rcs-media-without-url",
    ),
    pytest.param(
        data(RCS, carousel={"cards": [{"title": "A"}]}),
        E.INVALID_MESSAGE_DATA,
        "messageData.carousel.cards: has 1",
        id="rcs-carousel-1-card",
    ),
    pytest.param(
        make(FLASHCALL, messageData={}),
        E.INVALID_MESSAGE_DATA,
        "messageData.callerId",
        id="flashcall-no-caller",
    ),
    pytest.param(
        make(FLASHCALL, messageData={"callerId": "380441234567"}),
        E.INVALID_MESSAGE_DATA,
        "messageData.callerId",
        id="flashcall-caller-no-plus",
    ),
    pytest.param(
        make(FLASHCALL, messageData=DROP),
        E.INVALID_MESSAGE_DATA,
        "messageData: is required",
        id="flashcall-no-data",
    ),
    pytest.param(
        data(PROMO, extra={"note": "a\x00"}),
        E.INVALID_MESSAGE_DATA,
        "messageData.extra.note: contains a NUL",
        id="data-nul-nested",
    ),
    pytest.param(
        data(RCS, **{"k\ud800": 1}),
        E.INVALID_MESSAGE_DATA,
        "messageData: a key contains a lone surrogate",
        id="data-surrogate-key",
    ),
    pytest.param(
        make(SMS, customerMessageId="c" * 65),
        E.INVALID_MESSAGE_DATA,
        "customerMessageId: 65 characters",
        id="cmid-65",
    ),
    pytest.param(
        make(SMS, customerMessageId=42),
        E.INVALID_MESSAGE_DATA,
        "customerMessageId: must be a string",
        id="cmid-number",
    ),
    pytest.param(
        make(SMS, customerMessageId="a\ud800"),
        E.INVALID_MESSAGE_DATA,
        "customerMessageId: ",
        id="cmid-surrogate",
    ),
    pytest.param(
        make(SMS, callbackUrl="hooks.example.com"),
        E.INVALID_CALLBACK_URL,
        "callbackUrl: ",
        id="callback-not-absolute",
    ),
    pytest.param(
        make(SMS, callbackUrl="javascript:alert(1)"),
        E.INVALID_CALLBACK_URL,
        "callbackUrl: ",
        id="callback-javascript",
    ),
    pytest.param(
        make(SMS, callbackUrl="https://x.io:99999/"),
        E.INVALID_CALLBACK_URL,
        "callbackUrl: ",
        id="callback-bad-port",
    ),
    # INVALID_TTL
    pytest.param(make(SMS, ttl=0), E.INVALID_TTL, "ttl: 0 is out of range", id="ttl-0"),
    pytest.param(make(SMS, ttl=-1), E.INVALID_TTL, "ttl: -1 ", id="ttl-negative"),
    pytest.param(make(SMS, ttl=2_592_001), E.INVALID_TTL, "ttl: 2592001 ", id="ttl-2592001"),
    pytest.param(make(SMS, ttl=True), E.INVALID_TTL, "ttl: must be an integer", id="ttl-true"),
    pytest.param(make(SMS, ttl="60"), E.INVALID_TTL, "ttl: must be an integer", id="ttl-string"),
    pytest.param(make(SMS, ttl=60.0), E.INVALID_TTL, "ttl: must be an integer", id="ttl-float"),
]


@pytest.mark.parametrize(("raw", "code", "message_start"), REJECTED)
def test_rejected(raw: dict[str, Any], code: ErrorCode, message_start: str) -> None:
    result = validate_message(raw, LIMITS)
    assert isinstance(result, Rejection), result
    assert result.code is code, result.message
    assert result.message.startswith(message_start), result.message
    assert len(result.message) < 300


def test_rejection_message_example() -> None:
    result = validate_message(make(SMS, to="+123"), LIMITS)
    assert isinstance(result, Rejection)
    assert result.message.startswith("to: '+123' is not a valid E.164 number")


def test_first_failing_rule_wins() -> None:
    result = validate_message(make(SMS, type="mms", to="+1", text=DROP), LIMITS)
    assert isinstance(result, Rejection) and result.code is E.INVALID_TYPE
    result = validate_message(make(SMS, to="+1", from_="", ttl=0), LIMITS)
    assert isinstance(result, Rejection) and result.code is E.INVALID_RECIPIENT


# --- fallback chains -------------------------------------------------------------

SMS_STEP: dict[str, Any] = {"type": "sms", "text": "Your code is 1234"}
RCS_STEP: dict[str, Any] = {"type": "rcs", "text": "Your code is 1234"}


@pytest.mark.parametrize(
    ("raw", "types"),
    [
        pytest.param(make(PROMO, fallback=SMS_STEP), ["viber_promo", "sms"], id="viber-sms-obj"),
        pytest.param(make(OTP, fallback=[SMS_STEP]), ["viber_otp", "sms"], id="viber-sms-array"),
        pytest.param(
            make(PROMO, fallback=[RCS_STEP, SMS_STEP]),
            ["viber_promo", "rcs", "sms"],
            id="viber-rcs-sms",
        ),
        pytest.param(
            make(FLASHCALL, fallback=[PROMO | {"to": None, "from": None}, RCS_STEP, SMS_STEP]),
            ["flashcall", "viber_promo", "rcs", "sms"],
            id="all-four-channels",
        ),
        pytest.param(make(SMS, fallback=[]), ["sms"], id="sms-empty-array"),
        pytest.param(make(SMS, fallback=None), ["sms"], id="sms-null-fallback"),
        pytest.param(
            make(RCS, fallback=[make(TRANS, to=DROP)]), ["rcs", "viber_trans"], id="rcs-viber"
        ),
    ],
)
def test_fallback_chain_accepted(raw: dict[str, Any], types: list[str]) -> None:
    message = accepted(raw)
    assert [step.type.value for step in message.steps] == types
    assert message.has_fallback is (len(types) > 1)


def test_fallback_inherits_from_to_ttl() -> None:
    message = accepted(make(PROMO, ttl=600, fallback=SMS_STEP))
    sms = message.steps[1]
    assert (sms.to, sms.sender, sms.ttl) == (TO, "BatGate", 600)
    assert sms.text == SMS_STEP["text"]
    assert sms.message_data is None
    assert sms.parts == 1


def test_fallback_inherits_default_ttl() -> None:
    assert accepted(make(PROMO, fallback=SMS_STEP)).steps[1].ttl == LIMITS.default_ttl


def test_fallback_overrides_to_from_ttl() -> None:
    step = make(SMS_STEP, to=OTHER_TO, from_="12345", ttl=60, text="x" * 200)
    message = accepted(make(PROMO, ttl=600, fallback=[step]))
    assert message.to == TO
    sms = message.steps[1]
    assert (sms.to, sms.sender, sms.ttl, sms.parts) == (OTHER_TO, "12345", 60, 2)


REJECTED_FALLBACK = [
    pytest.param(make(SMS, fallback=SMS_STEP), "fallback: not allowed on type sms", id="on-sms"),
    pytest.param(make(SMS, fallback=[RCS_STEP]), "fallback: not allowed", id="on-sms-array"),
    pytest.param(
        make(PROMO, fallback=make(TRANS, to=DROP)),
        "fallback: type: viber_trans uses channel viber, already used by the primary step",
        id="two-viber-steps",
    ),
    pytest.param(
        make(PROMO, fallback=[RCS_STEP, RCS_STEP]),
        "fallback[1]: type: rcs uses channel rcs, already used by fallback[0]",
        id="two-rcs-fallbacks",
    ),
    pytest.param(
        make(PROMO, fallback=[SMS_STEP, RCS_STEP]),
        "fallback[0]: type: sms can only be the last step",
        id="sms-not-last",
    ),
    pytest.param(
        make(PROMO, fallback={"type": "mms", "text": "x"}),
        "fallback: type: 'mms' is not a message type",
        id="unknown-step-type",
    ),
    pytest.param(
        make(PROMO, fallback={"text": "x"}), "fallback: type: is required", id="step-no-type"
    ),
    pytest.param(make(PROMO, fallback="sms"), "fallback: must be an object or", id="string"),
    pytest.param(make(PROMO, fallback=["sms"]), "fallback[0]: must be an object", id="item-str"),
    pytest.param(
        make(PROMO, fallback=[{"type": "sms"}]),
        "fallback[0]: text: is required for type sms [MISSING_TEXT]",
        id="step-missing-text",
    ),
    pytest.param(
        make(PROMO, fallback=[make(SMS_STEP, to="+123")]),
        "fallback[0]: to: '+123' is not a valid E.164 number",
        id="step-bad-to",
    ),
    pytest.param(
        make(PROMO, fallback=[make(SMS_STEP, ttl=0)]),
        "fallback[0]: ttl: 0 is out of range",
        id="step-bad-ttl",
    ),
    pytest.param(
        make(PROMO, fallback=[RCS_STEP, make(SMS_STEP, text="x" * 1531)]),
        "fallback[1]: text: needs 11 SMS parts",
        id="step-too-long",
    ),
    pytest.param(
        make(PROMO, fallback=make(RCS_STEP, messageData={"buttons": "x"})),
        "fallback: messageData.buttons: must be an array",
        id="step-bad-data",
    ),
    pytest.param(
        make(PROMO, fallback=make(RCS_STEP, fallback=SMS_STEP)),
        "fallback: fallback: a step cannot have its own",
        id="nested-fallback",
    ),
]


@pytest.mark.parametrize(("raw", "message_start"), REJECTED_FALLBACK)
def test_fallback_rejected(raw: dict[str, Any], message_start: str) -> None:
    result = validate_message(raw, LIMITS)
    assert isinstance(result, Rejection), result
    assert result.code is E.INVALID_FALLBACK, result
    assert result.message.startswith(message_start), result.message


def test_fallback_step_failure_names_the_underlying_code() -> None:
    result = validate_message(make(PROMO, fallback=[make(SMS_STEP, to="+123")]), LIMITS)
    assert isinstance(result, Rejection)
    assert result.message.endswith("[INVALID_RECIPIENT]")
