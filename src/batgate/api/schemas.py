"""The wire format as the OpenAPI document states it (`/openapi.json`, `/docs`, `/redoc`).

The routes neither parse nor serialise through anything here (api/send.py and
api/status.py read and write bytes): this module only *describes* them, so it
must say exactly what they do. The schemas are JSON Schema (OpenAPI 3.1) written
out by hand, because what matters is where the server draws its lines:

- a request is refused as a whole (400/413/422) only where its schema says it is
  invalid; what the server judges per message (SPEC §2: a 200 whose entry is
  `rejected` with a code) is documented, but never declared as a constraint of
  the request;
- every error body is SPEC §6's `{"error": {"code", "message"}}` (FastAPI's
  `HTTPValidationError` is removed by `describe_api`);
- ids and cursors have the formats batgate hands out.

The pydantic classes at the end are names for FastAPI's `responses={…: {"model": …}}`;
their JSON Schema is the entry of `COMPONENTS` with the same name. `describe_api`
finishes the document (components, security, error shapes). tests/e2e/test_openapi.py
holds a running server to the document with schemathesis.
"""

from __future__ import annotations

import http
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from batgate.api.reports import DEFAULT_LIMIT, MAX_LIMIT
from batgate.api.status import MAX_IDS
from batgate.api.suppressions import MAX_NUMBERS
from batgate.domain.messages import Channel, ErrorCode, MessageType
from batgate.domain.optout import Source
from batgate.domain.status import ChannelStatus, DeliveryStatus
from batgate.domain.validation import MAX_CUSTOMER_MESSAGE_ID, Limits

Schema = dict[str, Any]

_JSON = "application/json"
_MAX_TTL = Limits().max_ttl
MAX_MESSAGES = 1000  # per send request, unless configured otherwise (the document says which)

MESSAGE_TYPES = [t.value for t in MessageType]
DELIVERY_STATUSES = [s.value for s in DeliveryStatus]
FINAL_STATUSES = [s.value for s in DeliveryStatus if s.is_final]
CHANNELS = [c.value for c in Channel]
CHANNEL_STATUSES = [s.value for s in ChannelStatus]
REJECTION_CODES = [c.value for c in ErrorCode]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


# -- formats --------------------------------------------------------------------------

# api/store: 12 hex digits of milliseconds since the epoch, then 10 random hex digits.
MESSAGE_ID: Schema = {
    "type": "string",
    "pattern": "^[0-9a-f]{22}$",
    "description": "A message id as batgate issues them: 22 lowercase hex digits (time-ordered).",
    "examples": ["0195f3c2a1b20a1b2c3d4e"],
}
MESSAGELIST_ID: Schema = {
    "type": "integer",
    "format": "int64",
    "minimum": 1,
    "description": "A message list id (`messagelistId` of a send's answer).",
    "examples": [42],
}
# api/reports.py: a cursor is the last message id of the previous page.
CURSOR: Schema = {
    "type": "string",
    "pattern": "^[A-Za-z0-9]{0,32}$",
    "description": (
        "The `nextCursor` of the previous page (opaque: 1-32 ASCII letters and digits); "
        "absent or empty for the first page."
    ),
    "examples": ["0195f3c2a1b20f9e8d7c6b"],
}
_E164 = "^\\+[0-9]{8,15}$"
# A number on a suppression list (domain.optout): E.164 form, as a send's `to` is stored.
E164_NUMBER: Schema = {
    "type": "string",
    "pattern": "^\\+[1-9][0-9]{7,14}$",
    "description": "E.164: `+` and 8-15 digits, the first not 0.",
    "examples": ["+380501234567"],
}
# api/suppressions.py: a page's cursor is its last number without the `+`.
NUMBER_CURSOR: Schema = {
    "type": "string",
    "pattern": "^(\\+?[0-9]{1,15})?$",
    "description": (
        "The `nextCursor` of the previous page (a number's digits; a number with its `+` "
        "works too: the page starts after it); absent or empty for the first page."
    ),
    "examples": ["380501234567"],
}
# Never a real host: the test of this document must not make the server call out.
CALLBACK_EXAMPLE = "http://127.0.0.1:9/hook"
_MONEY: Schema = {"type": "number", "minimum": 0}


def _url(description: str) -> Schema:
    return {
        "type": "string",
        "maxLength": 2048,
        "description": f"{description} An absolute http(s) URL, at most 2048 characters.",
    }


# -- the send request -----------------------------------------------------------------

_BUTTON: Schema = {
    "type": "object",
    "required": ["text", "url"],
    "properties": {"text": {"type": "string"}, "url": _url("Where the button leads.")},
}
_RCS_MEDIA: Schema = {
    "type": "object",
    "required": ["url", "type"],
    "properties": {
        "url": _url("The media file."),
        "type": {"type": "string", "examples": ["image/jpeg", "video/mp4"]},
        "thumbnail": _url("A video's preview image."),
    },
}
_RCS_ACTION: Schema = {
    "type": "object",
    "required": ["type"],
    "description": (
        "By `type`: `openUrl` needs `url`; `dial` needs `phoneNumber` (E.164 form); "
        "`shareLocation` nothing; `createCalendarEvent` needs `title` and `startTime`, and "
        "takes `endTime` (RFC 3339 with an offset, the end not before the start)."
    ),
    "properties": {
        "type": {"enum": ["openUrl", "dial", "shareLocation", "createCalendarEvent"]},
        "url": _url("For `openUrl`."),
        "phoneNumber": {"type": "string", "pattern": _E164},
        "title": {"type": "string"},
        "startTime": {"type": "string", "format": "date-time"},
        "endTime": {"type": "string", "format": "date-time"},
    },
}
_RCS_BUTTONS: Schema = {
    "type": "array",
    "maxItems": 4,
    "items": {
        "type": "object",
        "required": ["text", "action"],
        "properties": {"text": {"type": "string"}, "action": _RCS_ACTION},
    },
}

MESSAGE_DATA_EXAMPLES: dict[str, Schema] = {
    "viber_promo": {
        "img": "https://example.com/summer-sale.jpg",
        "buttonText": "Shop Now",
        "buttonAction": "https://example.com/sale",
    },
    "viber_trans": {
        "fileUrl": "https://example.com/invoice-12345.pdf",
        "fileName": "Invoice_12345.pdf",
        "fileType": "pdf",
    },
    "viber_carousel": {
        "carousel": {
            "items": [
                {
                    "title": f"Product {name}",
                    "imageUrl": f"https://example.com/product-{name.lower()}.jpg",
                    "primaryButton": {
                        "text": "Buy Now",
                        "url": f"https://example.com/product-{name.lower()}",
                    },
                }
                for name in ("A", "B")
            ]
        }
    },
    "viber_survey": {"survey": {"options": ["Very Satisfied", "Satisfied", "Dissatisfied"]}},
    "viber_otp": {
        "templateId": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        "templateLang": "en",
        "templateParams": {"PIN": "123456", "TIME": "10"},
    },
    "rcs": {
        "media": {"url": "https://example.com/sale-banner.jpg", "type": "image/jpeg"},
        "buttons": [
            {"text": "Shop Now", "action": {"type": "openUrl", "url": "https://example.com/sale"}},
            {"text": "Call us", "action": {"type": "dial", "phoneNumber": "+380501234567"}},
        ],
    },
    "flashcall": {"callerId": "+380123456789"},
}

MESSAGE_DATA: Schema = {
    "type": "object",
    "description": (
        "Type-specific content; the fields of every type are listed, each saying which "
        "type reads it. Checked per type; unknown keys are kept.\n\n"
        "- `viber_promo`: `img` (or `image`), `video`, `thumbnail`, `fileSize`, `duration`, "
        "`buttonText` + `buttonAction` (or `button: {text, url}`); text, an image or a "
        "video is needed; a short and a long form together are refused.\n"
        "- `viber_trans`: `fileUrl`, `fileName`, `fileType` (`pdf`); text or a file.\n"
        "- `viber_carousel`: `carousel.items`, 2-5 items.\n"
        "- `viber_survey`: `survey.options`, 1-5 non-blank strings.\n"
        "- `viber_otp`: exactly one of `{templateId, templateLang, templateParams?}` and "
        "`{code, validity}`.\n"
        "- `rcs`: `media`, `buttons` (at most 4), `carousel.cards` (2-10).\n"
        "- `flashcall`: `callerId`, required.\n\n"
        "A problem is answered per message with `INVALID_MESSAGE_DATA` (or `MISSING_TEXT`)."
    ),
    "properties": {
        "img": _url("viber_promo: the image."),
        "image": _url("viber_promo: short form of `img`."),
        "video": _url("viber_promo: the video."),
        "thumbnail": _url("viber_promo: the video's preview image."),
        "fileSize": {"type": "integer", "minimum": 1, "description": "viber_promo: bytes."},
        "duration": {"type": "integer", "minimum": 1, "description": "viber_promo: seconds."},
        "buttonText": {"type": "string", "description": "viber_promo: the button's label."},
        "buttonAction": _url("viber_promo: where the button leads."),
        "button": {**_BUTTON, "description": "viber_promo: short form of the button."},
        "fileUrl": _url("viber_trans: the document."),
        "fileName": {"type": "string", "description": "viber_trans: the document's name."},
        "fileType": {"enum": ["pdf"], "description": "viber_trans: only `pdf`."},
        "carousel": {
            "type": "object",
            "description": "viber_carousel: `items`; rcs: `cards`.",
            "properties": {
                "items": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 5,
                    "items": {
                        "type": "object",
                        "required": ["title", "imageUrl", "primaryButton"],
                        "properties": {
                            "title": {"type": "string"},
                            "imageUrl": _url("The item's image."),
                            "primaryButton": _BUTTON,
                            "secondaryButton": _BUTTON,
                        },
                    },
                },
                "cards": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 10,
                    "items": {
                        "type": "object",
                        "properties": {
                            "title": {"type": "string"},
                            "description": {"type": "string"},
                            "media": _RCS_MEDIA,
                            "buttons": _RCS_BUTTONS,
                        },
                    },
                },
            },
        },
        "survey": {
            "type": "object",
            "required": ["options"],
            "description": "viber_survey: the answers to choose from.",
            "properties": {
                "options": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 5,
                    "items": {"type": "string", "minLength": 1},
                }
            },
        },
        "templateId": {"type": "string", "format": "uuid", "description": "viber_otp."},
        "templateLang": {
            "type": "string",
            "examples": ["en", "pt-BR"],
            "description": "viber_otp: a language tag.",
        },
        "templateParams": {"type": "object", "description": "viber_otp: the template's values."},
        "code": {
            "type": "string",
            "pattern": "^[0-9]{4,10}$",
            "description": "viber_otp: 4-10 digits, a string (leading zeros survive).",
        },
        "validity": {"type": "integer", "minimum": 1, "description": "viber_otp: seconds."},
        "media": {**_RCS_MEDIA, "description": "rcs: an image or a video."},
        "buttons": {**_RCS_BUTTONS, "description": "rcs: at most 4 suggested actions."},
        "callerId": {
            "type": "string",
            "pattern": _E164,
            "description": "flashcall: the number that calls (E.164 form), required.",
        },
    },
    "examples": list(MESSAGE_DATA_EXAMPLES.values()),
}

_ADDRESSING: dict[str, Schema] = {
    "from": {
        "type": "string",
        "pattern": "^([A-Za-z0-9]{1,11}|[0-9]{1,15}|\\+[0-9]{8,15})$",
        "description": (
            "The sender: 1-11 ASCII letters and digits with at least one letter; or a "
            "number, 1-15 digits or E.164. Otherwise `INVALID_SENDER`."
        ),
        "examples": ["MyShop", "+380123456789"],
    },
    "to": {
        "type": "string",
        "pattern": _E164,
        "description": (
            "The recipient in E.164 form (`+` and 8-15 digits), a valid number. Otherwise "
            "`INVALID_RECIPIENT`. In the sandbox the last four digits pick the outcome "
            "(`0001` undeliverable, `0002` permanenterror, …)."
        ),
        "examples": ["+380501234567"],
    },
    "ttl": {
        "type": "integer",
        "minimum": 1,
        "maximum": _MAX_TTL,
        "description": (
            "Seconds the message may wait for delivery, a JSON integer (not `60.0`, not "
            '`"60"`); by default 86400. Otherwise `INVALID_TTL`.'
        ),
        "examples": [3600],
    },
}

_TEXT: Schema = {
    "type": "string",
    "description": (
        "Required for `sms`, `viber_survey` and `rcs` (`MISSING_TEXT`). SMS: at most the "
        "configured number of parts (default 10); Viber and flash call: 1000 characters; "
        "RCS: 3072 (`MESSAGE_TOO_LONG`). No NUL, no lone surrogate (`INVALID_ENCODING`)."
    ),
    "examples": ["Your code is 123456"],
}

FALLBACK_STEP: Schema = {
    "type": "object",
    "required": ["type"],
    "description": (
        "One more channel to try when the previous one fails. Each step of a chain is a "
        "different channel (viber, rcs, flashcall, sms), `sms` only last; a step inherits "
        "`from`, `to` and `ttl` (never `text` or `messageData`) unless it sets its own, and "
        "has no `fallback` of its own. A problem in a step: `INVALID_FALLBACK`."
    ),
    "properties": {
        "type": {"enum": MESSAGE_TYPES},
        "text": _TEXT,
        "messageData": ref("MessageData"),
        **_ADDRESSING,
    },
    "examples": [{"type": "sms", "text": "Your code is 123456"}],
}

MESSAGE: Schema = {
    "type": "object",
    "required": ["from", "to", "type"],
    "description": (
        "One message, as the server accepts it. Every field is judged per message: a "
        "message that breaks a rule here is answered in the 200 with a `rejected` entry "
        "and an error code (the rest of the batch is unaffected), never with a 4xx for "
        "the request. `null` in an optional field means absent; unknown fields are "
        "ignored. Checked in the order type, to, from, ttl, text, messageData, "
        "customerMessageId, callbackUrl, fallback; the first problem is reported."
    ),
    "properties": {
        **_ADDRESSING,
        "type": {
            "enum": MESSAGE_TYPES,
            "description": "The channel and kind of message. Otherwise `INVALID_TYPE`.",
        },
        "text": _TEXT,
        "customerMessageId": {
            "type": "string",
            "maxLength": MAX_CUSTOMER_MESSAGE_ID,
            "description": (
                "Your own id, echoed in the answer, the status and the webhooks. "
                "Otherwise `INVALID_MESSAGE_DATA`."
            ),
            "examples": ["order-12345"],
        },
        "messageData": ref("MessageData"),
        "fallback": {
            "description": "One step, or the chain as an array; not on `sms`.",
            "oneOf": [
                ref("FallbackStep"),
                {"type": "array", "items": ref("FallbackStep")},
            ],
        },
        "callbackUrl": {
            "type": "string",
            "maxLength": 2048,
            "description": (
                "Where this message's status webhooks go instead of the account's webhook "
                "URL: an absolute http(s) URL. Internal addresses (loopback, private, "
                "link-local…) are refused unless the operator allowed them "
                "(`INVALID_CALLBACK_URL`)."
            ),
            "examples": [CALLBACK_EXAMPLE],
        },
        "sendAt": {
            "type": "string",
            "format": "date-time",
            "description": (
                "Send later (batgate extension, SPEC §12): an RFC 3339 time with an offset, "
                "at most 35 days ahead (else `INVALID_SEND_AT`); in the past means now. The "
                "message stays `scheduled` until then, its TTL counting from then, and "
                "`DELETE /bat/message/{messageId}` cancels it meanwhile."
            ),
            "examples": ["2026-12-24T09:00:00+02:00"],
        },
        "scheduledTime": {
            "type": "string",
            "format": "date-time",
            "description": "SMSBAT Cascade's name for `sendAt`; either may be given.",
        },
        "promotional": {
            "type": "boolean",
            "description": (
                "A promotion: held through the account's quiet hours like `viber_promo`, "
                "`viber_carousel` and `viber_survey` (never `viber_trans`, `viber_otp`, "
                "`flashcall`). Not a boolean: `INVALID_MESSAGE_DATA`."
            ),
        },
    },
    "examples": [{"from": "MyShop", "to": "+380501234567", "type": "sms", "text": "Hello!"}],
}


def _message_list(max_messages: int) -> Schema:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": max_messages,
        "description": (
            f"1 to {max_messages} messages (more: 413). An element that is not an object "
            "makes the request a 400; any object is judged per message."
        ),
        "items": {
            "anyOf": [
                ref("Message"),
                {
                    "type": "object",
                    "description": (
                        "Any other object is answered per message: a `rejected` entry "
                        "with the code of its first problem."
                    ),
                },
            ]
        },
    }


def send_request(max_messages: int = MAX_MESSAGES) -> Schema:
    return {
        "description": (
            '`{"messages": [...]}`, or the array of messages alone. Read as JSON whatever '
            "the Content-Type when the key header authenticates; with Basic credentials it "
            "must be `application/json` (415). Refused as a whole only when it is not JSON, "
            "has no messages, or has an element that is not an object (400), or is too "
            "large (413); everything else is judged per message."
        ),
        "oneOf": [
            {
                "type": "object",
                "required": ["messages"],
                "properties": {"messages": _message_list(max_messages)},
            },
            _message_list(max_messages),
        ],
    }


def _example(mtype: str, text: str | None, **extra: Any) -> Schema:
    message: Schema = {"from": "MyShop", "to": "+380501234567", "type": mtype}
    if text is not None:
        message["text"] = text
    if mtype in MESSAGE_DATA_EXAMPLES:
        message["messageData"] = MESSAGE_DATA_EXAMPLES[mtype]
    message.update(extra)
    return message


SEND_EXAMPLES: dict[str, Schema] = {
    "sms": {
        "summary": "An SMS",
        "value": {"messages": [_example("sms", "Your order has shipped.", customerMessageId="o1")]},
    },
    "bare_array": {
        "summary": "Two SMS, the array alone",
        "value": [_example("sms", "Message 1"), _example("sms", "Message 2", ttl=3600)],
    },
    "viber_promo": {
        "summary": "Viber promo with an SMS fallback",
        "value": {
            "messages": [
                _example(
                    "viber_promo",
                    "Summer Sale! Up to 50% off.",
                    fallback={"type": "sms", "text": "Summer Sale! Up to 50% off."},
                )
            ]
        },
    },
    **{
        mtype: {"summary": mtype, "value": {"messages": [_example(mtype, text)]}}
        for mtype, text in [
            ("viber_trans", "Your invoice is attached."),
            ("viber_carousel", "Featured products"),
            ("viber_survey", "How satisfied are you with our service?"),
            ("viber_otp", None),
            ("rcs", "Summer Sale - Up to 50% off!"),
        ]
    },
    "flashcall": {
        "summary": "A flash call with an SMS fallback",
        "value": {
            "messages": [
                _example(
                    "flashcall",
                    None,
                    ttl=60,
                    fallback={"type": "sms", "text": "Your code is 123456"},
                )
            ]
        },
    },
}

IDEMPOTENCY_KEY: Schema = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes the send safe to retry: the same key from the same account within 24 hours "
        "answers the first response again and stores nothing. The same key with another "
        "body: 422 IDEMPOTENCY_KEY_REUSED. Not 1-255 printable ASCII characters: 400."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "example": "order-12345-attempt",
}

# -- answers ----------------------------------------------------------------------------

ERROR_DETAIL: Schema = {
    "type": "object",
    "required": ["code", "message"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "examples": ["INVALID_REQUEST"]},
        "message": {"type": "string", "minLength": 1, "description": "For people; may change."},
    },
}
ERROR_BODY: Schema = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "description": "Every error (SPEC §6).",
    "properties": {"error": ref("ErrorDetail")},
}

ACCEPTED_ENTRY: Schema = {
    "type": "object",
    "required": ["messageId", "status", "parts", "to"],
    "properties": {
        "messageId": MESSAGE_ID,
        "status": {"const": "accepted"},
        "parts": {
            "type": "integer",
            "minimum": 1,
            "description": "SMS segments (SPEC §5); 1 for other types.",
        },
        "customerMessageId": {"type": "string", "description": "Yours, when given."},
        "to": {"type": "string"},
        "callerId": {"type": "string", "description": "flashcall only."},
        "pattern": {
            "type": "string",
            "pattern": "^\\*\\*\\*[0-9]{6}$",
            "description": "flashcall only: `***` and the caller id's last six digits.",
        },
        "ttl": {
            "type": "integer",
            "minimum": 1,
            "description": "flashcall only: the effective TTL (the default when not given).",
        },
    },
}
REJECTED_ENTRY: Schema = {
    "type": "object",
    "required": ["messageId", "status", "error"],
    "description": "Nothing was stored or billed for this message.",
    "properties": {
        "messageId": {"type": "null"},
        "status": {"const": "rejected"},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"enum": REJECTION_CODES},
                "message": {"type": "string", "description": "Names the field and the problem."},
            },
        },
        "customerMessageId": {"type": "string", "description": "Echoed when it was a string."},
        "to": {"type": "string", "description": "Echoed when it was a string."},
    },
}
SEND_RESPONSE: Schema = {
    "type": "object",
    "required": ["messagelistId", "messages"],
    "properties": {
        "messagelistId": {
            **MESSAGELIST_ID,
            "description": "The batch's id, also when every message was rejected.",
        },
        "messages": {
            "type": "array",
            "minItems": 1,
            "description": "One entry per message sent, in the same order.",
            "items": {"oneOf": [ref("AcceptedEntry"), ref("RejectedEntry")]},
        },
    },
}

_FALLBACK_FIELDS = ["extendedStatuses", "rate", "rateAmount", "rateCurrency", "billAmount"]
STATUS_RESPONSE: Schema = {
    "type": "object",
    "required": ["messagelistId", "messageId", "deliverystatus", "partscount", "type", "to"],
    "description": (
        "A message's status (SPEC §3). `cost` is present exactly when `deliverystatus` "
        "is final (0 unless delivered); the fallback fields are present exactly when the "
        "message has a fallback."
    ),
    "properties": {
        "messagelistId": MESSAGELIST_ID,
        "messageId": MESSAGE_ID,
        "deliverystatus": {
            "enum": DELIVERY_STATUSES,
            "description": (
                "scheduled → processing → delivered | undeliverable | permanenterror, or "
                "scheduled → permanenterror; a final status never changes."
            ),
        },
        "partscount": {
            "type": "integer",
            "minimum": 1,
            "description": "Parts on the channel in use, or on the one that carried it.",
        },
        "cost": {**_MONEY, "description": "What was billed, in `billCurrency`; once final."},
        "customerMessageId": {"type": "string"},
        "type": {"enum": MESSAGE_TYPES},
        "to": {"type": "string"},
        "fallbacks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["type", "status"],
                "properties": {
                    "type": {"enum": MESSAGE_TYPES},
                    "status": {"enum": CHANNEL_STATUSES},
                },
            },
            "description": "Each fallback step's status.",
        },
        "extendedStatuses": {
            "type": "object",
            "propertyNames": {"enum": CHANNELS},
            "additionalProperties": {"enum": CHANNEL_STATUSES},
            "description": "Every step's status by channel.",
        },
        "rate": {**_MONEY, "description": "Price of one part on the channel in use or used."},
        "rateAmount": {**_MONEY, "description": "`rate` × `partscount`."},
        "rateCurrency": {"type": "string", "examples": ["USD"]},
        "billAmount": {**_MONEY, "description": "= `cost`; 0 until delivered."},
        "billCurrency": {"type": "string", "description": "The account's currency."},
    },
    "if": {"properties": {"deliverystatus": {"enum": FINAL_STATUSES}}},
    "then": {"required": ["cost"]},
    "else": {"not": {"required": ["cost"]}},
    "dependentRequired": {
        "fallbacks": [*_FALLBACK_FIELDS, "billCurrency"],
        "extendedStatuses": ["fallbacks"],
    },
}

MESSAGELIST_SUMMARY: Schema = {
    "type": "object",
    "required": [
        "messagelistId",
        "total",
        "counts",
        "cost",
        "currency",
        "deliveryRate",
        "messages",
        "nextCursor",
    ],
    "properties": {
        "messagelistId": MESSAGELIST_ID,
        "total": {"type": "integer", "minimum": 0, "description": "The list's messages."},
        "counts": {
            "type": "object",
            "required": DELIVERY_STATUSES,
            "additionalProperties": False,
            "properties": {s: {"type": "integer", "minimum": 0} for s in DELIVERY_STATUSES},
            "description": "Messages per status, every status (0 included).",
        },
        "cost": {**_MONEY, "description": "Billed so far, in `currency`."},
        "currency": {"type": "string"},
        "deliveryRate": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "delivered / total; 0 for a list without messages.",
        },
        "messages": {
            "type": "array",
            "maxItems": MAX_LIMIT,
            "items": ref("StatusResponse"),
            "description": "This page: each message's status document, in id order.",
        },
        "nextCursor": {
            **CURSOR,
            "type": ["string", "null"],
            "description": "`cursor` for the next page; null on the last.",
        },
    },
}

STATUSES_REQUEST: Schema = {
    "type": "object",
    "required": ["messageIds"],
    "description": (
        "Not JSON: 400. Of another shape (no `messageIds` array, an empty one, more than "
        f"{MAX_IDS}, an id that is not a string): 422."
    ),
    "properties": {
        "messageIds": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_IDS,
            "items": {
                "type": "string",
                "description": "Any string; one that is not an id of yours gets a NOT_FOUND entry.",
            },
            "examples": [["0195f3c2a1b20a1b2c3d4e", "no-such-id"]],
        }
    },
}
STATUS_ERROR: Schema = {
    "type": "object",
    "required": ["messageId", "error"],
    "properties": {
        "messageId": {"type": "string", "description": "As requested."},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"const": "NOT_FOUND"}, "message": {"type": "string"}},
        },
    },
}
STATUSES_RESPONSE: Schema = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "messages": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_IDS,
            "description": "One per requested id, in request order, duplicates included.",
            "items": {"anyOf": [ref("StatusResponse"), ref("StatusError")]},
        }
    },
}


SUPPRESSION: Schema = {
    "type": "object",
    "required": ["number", "source", "createdAt"],
    "description": "A number the account's messages may not go to (SPEC §11).",
    "properties": {
        "number": E164_NUMBER,
        "source": {
            "enum": [source.value for source in Source],
            "description": (
                "How it came onto the list: `api` (this API), `cli` (`batgate suppressions "
                "add`), `import` (a CSV file), `keyword` (the number texted STOP or the like)."
            ),
        },
        "createdAt": {"type": "string", "format": "date-time", "description": "RFC 3339, UTC."},
    },
}
SUPPRESSIONS_PAGE: Schema = {
    "type": "object",
    "required": ["suppressions", "nextCursor"],
    "properties": {
        "suppressions": {
            "type": "array",
            "maxItems": MAX_LIMIT,
            "items": ref("Suppression"),
            "description": "This page, in number order.",
        },
        "nextCursor": {
            "type": ["string", "null"],
            "pattern": "^[0-9]{1,15}$",
            "description": "`after` for the next page; null on the last.",
        },
    },
}
INBOUND_MESSAGE: Schema = {
    "type": "object",
    "required": [
        "inboundId",
        "from",
        "to",
        "text",
        "receivedAt",
        "parts",
        "incomplete",
        "connector",
        "inReplyTo",
    ],
    "properties": {
        "inboundId": {"type": "integer", "description": "Its id; the webhook's is `in_{id}`."},
        "from": {"type": "string", "description": "The phone's number (E.164 when known)."},
        "to": {"type": "string", "description": "The account's number or sender it came to."},
        "text": {"type": "string"},
        "receivedAt": {"type": "string", "format": "date-time"},
        "parts": {"type": "integer", "minimum": 1, "description": "The parts it came in."},
        "incomplete": {
            "type": "boolean",
            "description": "Some parts never came: `text` is those that did, in order.",
        },
        "connector": {"type": "string", "description": "The connector it came by."},
        "inReplyTo": {
            "type": ["string", "null"],
            "description": "The account's latest message to `from` within 7 days, if any.",
        },
    },
}
INBOUND_PAGE: Schema = {
    "type": "object",
    "required": ["messages", "nextCursor"],
    "properties": {
        "messages": {
            "type": "array",
            "maxItems": MAX_LIMIT,
            "items": ref("InboundMessage"),
            "description": "This page, oldest first.",
        },
        "nextCursor": {
            "type": ["string", "null"],
            "pattern": "^[0-9]{1,19}$",
            "description": "`after` for the next page; null on the last.",
        },
    },
}
SUPPRESSIONS_REQUEST: Schema = {
    "type": "object",
    "required": ["numbers"],
    "description": (
        "All or nothing: not JSON, 400; of another shape (no `numbers` array, an empty "
        f"one, more than {MAX_NUMBERS}) or with any number not in E.164 form, 422 naming "
        "each bad number, and nothing is added."
    ),
    "properties": {
        "numbers": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_NUMBERS,
            "items": E164_NUMBER,
            "description": "Numbers to suppress; duplicates count once.",
            "examples": [["+380501234567", "+380671234567"]],
        }
    },
}
SUPPRESSIONS_ADDED: Schema = {
    "type": "object",
    "required": ["added", "suppressions"],
    "properties": {
        "added": {"type": "integer", "minimum": 0, "description": "Numbers new on the list."},
        "suppressions": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_NUMBERS,
            "description": (
                "Each number of the request once, in request order, as listed now: a number "
                "listed before keeps its source and time."
            ),
            "items": {
                "allOf": [
                    ref("Suppression"),
                    {
                        "type": "object",
                        "required": ["added"],
                        "properties": {
                            "added": {"type": "boolean", "description": "New on the list."}
                        },
                    },
                ]
            },
        },
    },
}


def components(max_messages: int = MAX_MESSAGES) -> dict[str, Schema]:
    """Every schema of the document by name (`#/components/schemas/…`)."""
    return {
        "ErrorDetail": ERROR_DETAIL,
        "ErrorBody": ERROR_BODY,
        "SendRequest": send_request(max_messages),
        "Message": MESSAGE,
        "MessageData": MESSAGE_DATA,
        "FallbackStep": FALLBACK_STEP,
        "SendResponse": SEND_RESPONSE,
        "AcceptedEntry": ACCEPTED_ENTRY,
        "RejectedEntry": REJECTED_ENTRY,
        "StatusResponse": STATUS_RESPONSE,
        "MessageListSummary": MESSAGELIST_SUMMARY,
        "StatusesRequest": STATUSES_REQUEST,
        "StatusError": STATUS_ERROR,
        "StatusesResponse": STATUSES_RESPONSE,
        "Suppression": SUPPRESSION,
        "SuppressionsPage": SUPPRESSIONS_PAGE,
        "SuppressionsRequest": SUPPRESSIONS_REQUEST,
        "SuppressionsAdded": SUPPRESSIONS_ADDED,
        "InboundMessage": INBOUND_MESSAGE,
        "InboundPage": INBOUND_PAGE,
    }


COMPONENTS = components()

# -- parameters and responses of the routes ----------------------------------------------------

MESSAGE_ID_PARAMETER: Schema = {
    "name": "messageId",
    "in": "path",
    "required": True,
    "description": "An id from a send's answer. Any other string, or another account's id: 404.",
    "schema": MESSAGE_ID,
}
MESSAGELIST_ID_PARAMETER: Schema = {
    "name": "messagelistId",
    "in": "path",
    "required": True,
    "description": (
        "A `messagelistId` of yours, in ASCII digits; anything else (another account's "
        "list too): 404."
    ),
    "schema": MESSAGELIST_ID,
}


def _limit_parameter(items: str) -> Schema:
    """A page's `limit` (api/reports.py: `page_limit`)."""
    return {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": (
            f"{items} per page, 1-{MAX_LIMIT} (absent or empty: {DEFAULT_LIMIT}); otherwise 422."
        ),
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_LIMIT,
            "default": DEFAULT_LIMIT,
        },
    }


# The parameters of `GET /bat/messagelist/{id}`; the route reads its query itself, to
# answer a bad value with 422 (api/reports.py), so FastAPI documents it from here.
PAGE_PARAMETERS: list[Schema] = [
    MESSAGELIST_ID_PARAMETER,
    _limit_parameter("Messages"),
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "The `nextCursor` of the previous page; otherwise 422.",
        "schema": CURSOR,
    },
]

# `GET /bat/inbound`, which reads its query itself (api/inbound.py).
INBOUND_PAGE_PARAMETERS: list[Schema] = [
    _limit_parameter("Messages"),
    {
        "name": "after",
        "in": "query",
        "required": False,
        "description": "The `nextCursor` of the previous page; otherwise 422.",
        "schema": {"type": "string", "pattern": "^[0-9]{0,19}$"},
    },
]

# `GET /bat/suppressions`, which reads its query itself too (api/suppressions.py).
SUPPRESSION_PAGE_PARAMETERS: list[Schema] = [
    _limit_parameter("Entries"),
    {
        "name": "after",
        "in": "query",
        "required": False,
        "description": "The `nextCursor` of the previous page; otherwise 422.",
        "schema": NUMBER_CURSOR,
    },
]
NUMBER_PARAMETER: Schema = {
    "name": "number",
    "in": "path",
    "required": True,
    "description": (
        "The number as listed (`+` may be sent as `%2B`). Not in E.164 form: 422; not on "
        "the account's list: 404."
    ),
    "schema": E164_NUMBER,
}

_REQUEST_ID_HEADER: Schema = {
    "description": "The request's `X-Request-Id` when it sent a usable one, else a new id.",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:;/+=@-]{1,128}$"},
}

# status: (description, the codes its body may carry)
_ERRORS: dict[int, tuple[str, tuple[str, ...]]] = {
    400: ("The request is not valid (not JSON, no messages, wrong shape).", ("INVALID_REQUEST",)),
    401: (
        "Missing, wrong or malformed credentials, or a disabled account.",
        ("UNAUTHORIZED",),
    ),
    404: ("Not found: unknown, or another account's.", ("NOT_FOUND",)),
    405: ("The path does not take this method (see `Allow`).", ("METHOD_NOT_ALLOWED",)),
    413: ("Too many items in one request, or a body over the size limit.", ("PAYLOAD_TOO_LARGE",)),
    415: (
        "With Basic credentials the body must be sent as `Content-Type: application/json`.",
        ("UNSUPPORTED_MEDIA_TYPE",),
    ),
    422: ("JSON the route cannot serve.", ("INVALID_REQUEST", "IDEMPOTENCY_KEY_REUSED")),
    429: (
        "The account's rate limit, or too many failed logins; retry after `Retry-After` seconds.",
        ("RATE_LIMITED",),
    ),
    500: ("An unexpected error; the server log has the details.", ("INTERNAL_ERROR",)),
    503: ("Not ready: the database does not answer, or the process is stopping.", ("NOT_READY",)),
}
_ERROR_HEADERS: dict[int, dict[str, Schema]] = {
    401: {
        "WWW-Authenticate": {
            "required": True,
            "schema": {"type": "string", "enum": ['Basic realm="batgate"']},
        }
    },
    429: {
        "Retry-After": {
            "required": True,
            "description": "Whole seconds.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def error_response(
    status: int, description: str | None = None, codes: Sequence[str] | None = None
) -> Schema:
    """An OpenAPI response of `status`: the SPEC §6 body with one of `codes`."""
    known_description, known_codes = _ERRORS.get(status, (None, ()))
    codes = list(codes or known_codes)
    schema: Schema = ref("ErrorBody")
    if codes:
        only = {"properties": {"error": {"properties": {"code": {"enum": codes}}}}}
        schema = {"allOf": [ref("ErrorBody"), only]}
    example = {"error": {"code": codes[0] if codes else "…", "message": "…"}}
    response: Schema = {
        "description": description or known_description or http.HTTPStatus(status).phrase,
        "content": {_JSON: {"schema": schema, "example": example}},
    }
    if status in _ERROR_HEADERS:
        response["headers"] = dict(_ERROR_HEADERS[status])
    return response


def error_responses(*statuses: int) -> dict[int | str, Schema]:
    return {status: error_response(status) for status in statuses}


def json_body(component: str, examples: Mapping[str, Schema] | None = None) -> Schema:
    """The `openapi_extra` request body of a route that reads its JSON body itself."""
    content: Schema = {"schema": ref(component)}
    if examples:
        content["examples"] = dict(examples)
    return {"requestBody": {"required": True, "content": {_JSON: content}}}


def answer(component: str, description: str, links: Mapping[str, Schema] | None = None) -> Schema:
    """A 200 response whose body is `component`."""
    response: Schema = {
        "description": description,
        "content": {_JSON: {"schema": ref(component)}},
    }
    if links:
        response["links"] = dict(links)
    return response


# Operation ids (the routes' `operation_id`), for the links below.
SEND = "sendMessages"
GET_STATUS = "getMessageStatus"
GET_MESSAGELIST = "getMessagelist"
GET_STATUSES = "getMessageStatuses"
LIST_SUPPRESSIONS = "listSuppressions"
ADD_SUPPRESSIONS = "addSuppressions"
REMOVE_SUPPRESSION = "removeSuppression"
CANCEL_MESSAGE = "cancelMessage"
LIST_INBOUND = "listInbound"

_FIRST_ID = "$response.body#/messages/0/messageId"
SEND_LINKS: dict[str, Schema] = {
    "MessageStatus": {
        "operationId": GET_STATUS,
        "parameters": {"messageId": _FIRST_ID},
        "description": "The status of the first message (when it was accepted).",
    },
    "Messagelist": {
        "operationId": GET_MESSAGELIST,
        "parameters": {"messagelistId": "$response.body#/messagelistId"},
        "description": "The batch's counts and statuses.",
    },
    "MessageStatuses": {
        "operationId": GET_STATUSES,
        "requestBody": {"messageIds": [_FIRST_ID]},
        "description": "The statuses of the first message, in bulk.",
    },
    "CancelMessage": {
        "operationId": CANCEL_MESSAGE,
        "parameters": {"messageId": _FIRST_ID},
        "description": "Cancel the first message while it is still scheduled.",
    },
}
STATUS_LINKS: dict[str, Schema] = {
    "Messagelist": {
        "operationId": GET_MESSAGELIST,
        "parameters": {"messagelistId": "$response.body#/messagelistId"},
        "description": "The message's batch.",
    }
}
MESSAGELIST_LINKS: dict[str, Schema] = {
    "NextPage": {
        "operationId": GET_MESSAGELIST,
        "parameters": {
            "messagelistId": "$response.body#/messagelistId",
            "cursor": "$response.body#/nextCursor",
        },
        "description": "The next page (while `nextCursor` is not null).",
    }
}

SUPPRESSIONS_LINKS: dict[str, Schema] = {
    "NextPage": {
        "operationId": LIST_SUPPRESSIONS,
        "parameters": {"after": "$response.body#/nextCursor"},
        "description": "The next page (while `nextCursor` is not null).",
    }
}
ADDED_LINKS: dict[str, Schema] = {
    "Remove": {
        "operationId": REMOVE_SUPPRESSION,
        "parameters": {"number": "$response.body#/suppressions/0/number"},
        "description": "Take the first number off the list again.",
    }
}

# -- the document as a whole -------------------------------------------------------------

SECURITY_SCHEMES: dict[str, Schema] = {
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Authorization-Key",
        "description": (
            "The account's API key (`batgate accounts create` prints it). When this header "
            "is present it is the credential used, even beside an `Authorization` header."
        ),
    },
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": (
            "HTTP Basic, either the account's `username:password`, or `@` as the username "
            'and the API key as the password (`base64("@:" + key)`). Sends with Basic '
            "credentials must say `Content-Type: application/json` (415 otherwise)."
        ),
    },
}
SECURITY: list[Schema] = [{"apiKey": []}, {"basic": []}]

DESCRIPTION = """\
A self-hosted messaging gateway speaking the SMSBAT REST API, with batgate's
extensions (docs/api.md).

**Authentication.** Every `/bat/*` operation needs one of the security schemes:
the `X-Authorization-Key` header, or HTTP Basic (username and password, or `@` and
the API key). Missing or wrong credentials: `401` with
`WWW-Authenticate: Basic realm="batgate"`. `/healthz`, `/readyz`, `/metrics` and
these documents (`/openapi.json`, `/docs`, `/redoc`) need none.

**Errors.** Every error is `{"error": {"code": "…", "message": "…"}}` (SPEC §6),
with the status codes each operation lists. Besides those, any request may be
answered by the HTTP layer before it reaches an operation: `400 INVALID_REQUEST`
(not valid HTTP/1.1), `408 REQUEST_TIMEOUT` (a head or body too slow),
`414 URI_TOO_LONG`, `431 REQUEST_HEADER_FIELDS_TOO_LARGE`; an unknown path is
`404 NOT_FOUND`, a method a path does not take `405 METHOD_NOT_ALLOWED` with `Allow`.

**Sends are judged per message.** `POST /bat/messagelist` is refused as a whole
only when its body is not JSON, has no messages, or has an element that is not an
object (400), or is too large (413). Every other problem is answered in the 200:
that message's entry is `rejected` with an error code, and the others go ahead.

**Rate limit.** Per account (by default 100 requests/s, bursts of 200): `429
RATE_LIMITED` with `Retry-After` in whole seconds.

Every response carries `X-Request-Id`.
"""

TAGS: list[Schema] = [
    {"name": "SMSBAT", "description": "The SMSBAT REST API (the project's SPEC)."},
    {"name": "batgate", "description": "batgate's extensions (docs/api.md)."},
    {"name": "operations", "description": "For operators and orchestrators; no credentials."},
]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def describe_api(document: Schema, max_messages: int = MAX_MESSAGES) -> Schema:
    """Finish FastAPI's document: the components above, the security schemes (required
    on every `/bat/*` operation), parameters as documented here, no FastAPI validation
    errors (batgate never answers them), `X-Request-Id` on every response."""
    document["info"]["description"] = DESCRIPTION
    document["tags"] = TAGS
    parts = document.setdefault("components", {})
    parts.setdefault("schemas", {}).update(components(max_messages))
    parts["securitySchemes"] = SECURITY_SCHEMES
    for path, operation in _operations(document):
        if path.startswith("/bat/"):
            operation.setdefault("security", SECURITY)
        if "parameters" in operation:
            operation["parameters"] = _last_of_each(operation["parameters"])
        responses = operation.get("responses", {})
        for status in list(responses):
            if _is_fastapi_validation(responses[status]):
                del responses[status]
        for response in responses.values():
            response.setdefault("headers", {}).setdefault("X-Request-Id", _REQUEST_ID_HEADER)
    text = json.dumps({k: v for k, v in document.items() if k != "components"})
    text += json.dumps({k: v for k, v in parts["schemas"].items() if k not in _FASTAPI_VALIDATION})
    for name in _FASTAPI_VALIDATION:
        if f"#/components/schemas/{name}" not in text:
            parts["schemas"].pop(name, None)
    return document


def _operations(document: Schema) -> Iterator[tuple[str, Schema]]:
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield path, item[method]


def _last_of_each(parameters: list[Schema]) -> list[Schema]:
    """FastAPI's parameters, each replaced by a later one of the same name and place
    (`openapi_extra` adds to the list FastAPI made from the function's signature)."""
    kept: dict[tuple[str, str], Schema] = {}
    for parameter in parameters:
        key = (parameter.get("name", ""), parameter.get("in", ""))
        kept.pop(key, None)
        kept[key] = parameter
    return list(kept.values())


def _is_fastapi_validation(response: Schema) -> bool:
    schema = response.get("content", {}).get(_JSON, {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


# -- names for FastAPI's `responses={…: {"model": …}}` ------------------------------------------


def _component_schema(schema: dict[str, Any], cls: type[Any]) -> None:
    schema.clear()
    schema.update(COMPONENTS[cls.__name__])


class _Documented(BaseModel):
    """Its JSON Schema is the entry of COMPONENTS with the class's name."""

    model_config = ConfigDict(json_schema_extra=_component_schema)


class ErrorBody(_Documented):
    pass


class SendRequest(_Documented):
    pass


class SendResponse(_Documented):
    pass


class StatusResponse(_Documented):
    pass


class MessageListSummary(_Documented):
    pass


class StatusesRequest(_Documented):
    pass


class StatusesResponse(_Documented):
    pass
