"""Message types, channels and the validated shape of a message to send.

Pure data: no I/O. The API turns a request body into :class:`NewMessage` objects
through :mod:`batgate.domain.validation`; the store persists them; the engine walks
their :class:`Step` chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class MessageType(StrEnum):
    SMS = "sms"
    VIBER_PROMO = "viber_promo"
    VIBER_TRANS = "viber_trans"
    VIBER_CAROUSEL = "viber_carousel"
    VIBER_SURVEY = "viber_survey"
    VIBER_OTP = "viber_otp"
    RCS = "rcs"
    FLASHCALL = "flashcall"


_TYPE_OF = {t.value: t for t in MessageType}  # faster than calling the Enum


class Channel(StrEnum):
    """The delivery channel a message type travels on (the keys of `extendedStatuses`)."""

    SMS = "sms"
    VIBER = "viber"
    RCS = "rcs"
    FLASHCALL = "flashcall"


CHANNEL_OF: dict[MessageType, Channel] = {
    MessageType.SMS: Channel.SMS,
    MessageType.VIBER_PROMO: Channel.VIBER,
    MessageType.VIBER_TRANS: Channel.VIBER,
    MessageType.VIBER_CAROUSEL: Channel.VIBER,
    MessageType.VIBER_SURVEY: Channel.VIBER,
    MessageType.VIBER_OTP: Channel.VIBER,
    MessageType.RCS: Channel.RCS,
    MessageType.FLASHCALL: Channel.FLASHCALL,
}


class ErrorCode(StrEnum):
    """Per-message rejection codes of SPEC §2."""

    INVALID_RECIPIENT = "INVALID_RECIPIENT"
    INVALID_SENDER = "INVALID_SENDER"
    INVALID_TYPE = "INVALID_TYPE"
    MISSING_TEXT = "MISSING_TEXT"
    MESSAGE_TOO_LONG = "MESSAGE_TOO_LONG"
    INVALID_ENCODING = "INVALID_ENCODING"
    INVALID_MESSAGE_DATA = "INVALID_MESSAGE_DATA"
    INVALID_TTL = "INVALID_TTL"
    INVALID_FALLBACK = "INVALID_FALLBACK"
    INVALID_CALLBACK_URL = "INVALID_CALLBACK_URL"  # malformed, or pointing inside
    OPTED_OUT = "OPTED_OUT"  # to a number on the account's suppression list (SPEC §11)
    INVALID_SEND_AT = "INVALID_SEND_AT"  # sendAt unreadable or too far ahead (SPEC §12)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one message of a batch was not accepted."""

    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class Step:
    """One channel attempt of a message: the primary send or one fallback."""

    type: MessageType
    to: str
    sender: str
    text: str | None
    message_data: dict[str, Any] | None
    ttl: int
    parts: int

    @property
    def channel(self) -> Channel:
        return CHANNEL_OF[self.type]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "to": self.to,
            "from": self.sender,
            "text": self.text,
            "messageData": self.message_data,
            "ttl": self.ttl,
            "parts": self.parts,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        return cls(
            type=_TYPE_OF[data["type"]],
            to=data["to"],
            sender=data["from"],
            text=data["text"],
            message_data=data["messageData"],
            ttl=int(data["ttl"]),
            parts=int(data["parts"]),
        )


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message, ready to be stored; `steps[0]` is the primary channel."""

    customer_message_id: str | None
    steps: tuple[Step, ...]
    callback_url: str | None = None
    # When it may be handed over (epoch seconds; SPEC §12): None is now.
    send_at: float | None = None
    # Sent with `"promotional": true` (quiet hours hold it; domain.schedule).
    promotional: bool = False

    @property
    def to(self) -> str:
        return self.steps[0].to

    @property
    def primary(self) -> Step:
        return self.steps[0]

    @property
    def has_fallback(self) -> bool:
        return len(self.steps) > 1
