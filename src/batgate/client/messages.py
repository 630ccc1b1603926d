"""Typed builders for every message type of SPEC §2, and their fallback chains.

Each builder returns a :class:`Message`; `Client.send()` takes those (or plain
dicts in the wire shape). A fallback step is a message too, built the same way,
usually with `to=None` and `sender=None` so that it inherits them from the primary::

    viber_promo("+380501234567", "20% off today", sender="MyShop",
                fallback=sms(None, "20% off today: myshop.example/sale"))

The builders check nothing the server checks (the server is the one judge, and
its per-message codes come back in the send result); they only spell the JSON.
The one thing refused here is a naive datetime as `send_at` (ValueError): which
moment it means depends on a time zone only the caller knows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from batgate.domain.messages import MessageType

__all__ = [
    "Button",
    "CarouselItem",
    "Message",
    "MessageType",
    "RcsButton",
    "flashcall",
    "rcs",
    "send_time",
    "sms",
    "viber_carousel",
    "viber_otp",
    "viber_promo",
    "viber_survey",
    "viber_trans",
]


@dataclass(frozen=True, slots=True)
class Message:
    """One message (or fallback step) to send. `to`/`sender`/`ttl` None: absent (inherited).

    `send_at` is the wire's `sendAt` (RFC 3339 text: the builders turn a datetime into
    it), `promotional` its `promotional`; both belong to the message, not to a step.
    """

    type: str
    to: str | None = None
    sender: str | None = None
    text: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    customer_message_id: str | None = None
    ttl: int | None = None
    send_at: str | None = None
    promotional: bool | None = None
    fallback: tuple[Message, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # other wire fields, e.g. callbackUrl

    def to_json(self) -> dict[str, Any]:
        """The wire form (SPEC §2): only the fields that are set."""
        doc: dict[str, Any] = {"type": self.type}
        for key, value in (
            ("from", self.sender),
            ("to", self.to),
            ("text", self.text),
            ("customerMessageId", self.customer_message_id),
            ("ttl", self.ttl),
            ("sendAt", self.send_at),
            ("promotional", self.promotional),
        ):
            if value is not None:
                doc[key] = value
        if self.data:
            doc["messageData"] = dict(self.data)
        if self.fallback:
            doc["fallback"] = [step.to_json() for step in self.fallback]
        doc.update(self.extra)
        return doc

    def with_fallback(self, *steps: Message) -> Message:
        """A copy with `steps` appended to the fallback chain."""
        return replace(self, fallback=self.fallback + steps)


@dataclass(frozen=True, slots=True)
class Button:
    """A Viber button: a label and the URL it opens."""

    text: str
    url: str

    def to_json(self) -> dict[str, str]:
        return {"text": self.text, "url": self.url}


@dataclass(frozen=True, slots=True)
class CarouselItem:
    """One card of a Viber carousel."""

    title: str
    image_url: str
    primary_button: Button
    secondary_button: Button | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "title": self.title,
            "imageUrl": self.image_url,
            "primaryButton": self.primary_button.to_json(),
        }
        if self.secondary_button is not None:
            doc["secondaryButton"] = self.secondary_button.to_json()
        return doc


@dataclass(frozen=True, slots=True)
class RcsButton:
    """An RCS suggested action: `action` is the action's type, `url` and `extra` its fields.

    openUrl takes `url`; dial `extra={"phoneNumber": "+380..."}`; shareLocation nothing;
    createCalendarEvent `extra={"title": ..., "startTime": ..., "endTime": ...}`. On the
    wire the action is an object, as in SMSBAT's rcs.md (SPEC §2)::

        {"text": "Shop", "action": {"type": "openUrl", "url": "https://..."}}
    """

    text: str
    action: str = "openUrl"
    url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # the action's other fields

    def to_json(self) -> dict[str, Any]:
        action: dict[str, Any] = {"type": self.action, **self.extra}
        if self.url is not None:
            action["url"] = self.url
        return {"text": self.text, "action": action}


def send_time(when: datetime | str | None) -> str | None:
    """`sendAt` on the wire: an aware datetime as RFC 3339 (its own offset kept), a string
    as it is (the server judges it), None as None. A naive datetime is a ValueError: its
    moment depends on a time zone the server cannot know."""
    if when is None or isinstance(when, str):
        return when
    if not isinstance(when, datetime):
        raise TypeError(f"send_at must be a datetime or an RFC 3339 string, not {when!r}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(
            "send_at is a naive datetime: give it a time zone, "
            "e.g. datetime(2026, 12, 24, 9, tzinfo=ZoneInfo('Europe/Kyiv'))"
        )
    return when.isoformat()


def _steps(fallback: Message | Sequence[Message] | None) -> tuple[Message, ...]:
    if fallback is None:
        return ()
    if isinstance(fallback, Message):
        return (fallback,)
    return tuple(fallback)


def _data(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _message(
    kind: MessageType,
    to: str | None,
    text: str | None,
    data: Mapping[str, Any],
    *,
    sender: str | None,
    customer_message_id: str | None,
    ttl: int | None,
    send_at: datetime | str | None,
    promotional: bool | None,
    fallback: Message | Sequence[Message] | None,
    extra: Mapping[str, Any] | None,
) -> Message:
    return Message(
        type=kind.value,
        to=to,
        text=text,
        data=data,
        sender=sender,
        customer_message_id=customer_message_id,
        ttl=ttl,
        send_at=send_time(send_at),
        promotional=promotional,
        fallback=_steps(fallback),
        extra=extra or {},
    )


def sms(
    to: str | None,
    text: str,
    *,
    sender: str | None = None,
    customer_message_id: str | None = None,
    ttl: int | None = None,
    send_at: datetime | str | None = None,
    promotional: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Message:
    """An SMS (it has no fallback of its own: SMS is always the last step of a chain)."""
    return _message(
        MessageType.SMS,
        to,
        text,
        {},
        sender=sender,
        customer_message_id=customer_message_id,
        ttl=ttl,
        send_at=send_at,
        promotional=promotional,
        fallback=None,
        extra=extra,
    )


def viber_promo(
    to: str | None,
    text: str | None = None,
    *,
    sender: str | None = None,
    image: str | None = None,
    video: str | None = None,
    thumbnail: str | None = None,
    button: Button | None = None,
    file_size: int | None = None,
    duration: int | None = None,
    fallback: Message | Sequence[Message] | None = None,
    customer_message_id: str | None = None,
    ttl: int | None = None,
    send_at: datetime | str | None = None,
    promotional: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Message:
    """A promotional Viber message: text, an image or a video, optionally a button."""
    data = _data(
        img=image,
        video=video,
        thumbnail=thumbnail,
        fileSize=file_size,
        duration=duration,
        buttonText=button.text if button else None,
        buttonAction=button.url if button else None,
    )
    return _message(
        MessageType.VIBER_PROMO,
        to,
        text,
        data,
        sender=sender,
        customer_message_id=customer_message_id,
        ttl=ttl,
        send_at=send_at,
        promotional=promotional,
        fallback=fallback,
        extra=extra,
    )


def viber_trans(
    to: str | None,
    text: str | None = None,
    *,
    sender: str | None = None,
    file_url: str | None = None,
    file_name: str | None = None,
    file_type: str | None = None,
    fallback: Message | Sequence[Message] | None = None,
    customer_message_id: str | None = None,
    ttl: int | None = None,
    send_at: datetime | str | None = None,
    promotional: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Message:
    """A transactional Viber message: text, or a file (`file_type` "pdf" when a file is given)."""
    if file_url is not None and file_type is None:
        file_type = "pdf"
    data = _data(fileUrl=file_url, fileName=file_name, fileType=file_type)
    return _message(
        MessageType.VIBER_TRANS,
        to,
        text,
        data,
        sender=sender,
        customer_message_id=customer_message_id,
        ttl=ttl,
        send_at=send_at,
        promotional=promotional,
        fallback=fallback,
        extra=extra,
    )


def viber_carousel(
    to: str | None,
    items: Sequence[CarouselItem],
    *,
    text: str | None = None,
    sender: str | None = None,
    fallback: Message | Sequence[Message] | None = None,
    customer_message_id: str | None = None,
    ttl: int | None = None,
    send_at: datetime | str | None = None,
    promotional: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Message:
    """A Viber carousel of 2–5 cards."""
    data = {"carousel": {"items": [item.to_json() for item in items]}}
    return _message(
        MessageType.VIBER_CAROUSEL,
        to,
        text,
        data,
        sender=sender,
        customer_message_id=customer_message_id,
        ttl=ttl,
        send_at=send_at,
        promotional=promotional,
        fallback=fallback,
        extra=extra,
    )


def viber_survey(
    to: str | None,
    text: str,
    options: Sequence[str],
    *,
    sender: str | None = None,
    fallback: Message | Sequence[Message] | None = None,
    customer_message_id: str | None = None,
    ttl: int | None = None,
    send_at: datetime | str | None = None,
    promotional: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Message:
    """A Viber survey: a question and 1–5 answers."""
    data = {"survey": {"options": list(options)}}
    return _message(
        MessageType.VIBER_SURVEY,
        to,
        text,
        data,
        sender=sender,
        customer_message_id=customer_message_id,
        ttl=ttl,
        send_at=send_at,
        promotional=promotional,
        fallback=fallback,
        extra=extra,
    )


def viber_otp(
    to: str | None,
    *,
    code: str | None = None,
    validity: int | None = None,
    template_id: str | None = None,
    template_lang: str | None = None,
    template_params: Mapping[str, Any] | None = None,
    sender: str | None = None,
    fallback: Message | Sequence[Message] | None = None,
    customer_message_id: str | None = None,
    ttl: int | None = None,
    send_at: datetime | str | None = None,
    promotional: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Message:
    """A Viber OTP: either `code` + `validity` (seconds), or a template with its parameters."""
    data = _data(
        code=code,
        validity=validity,
        templateId=template_id,
        templateLang=template_lang,
        templateParams=dict(template_params) if template_params is not None else None,
    )
    return _message(
        MessageType.VIBER_OTP,
        to,
        None,
        data,
        sender=sender,
        customer_message_id=customer_message_id,
        ttl=ttl,
        send_at=send_at,
        promotional=promotional,
        fallback=fallback,
        extra=extra,
    )


def rcs(
    to: str | None,
    text: str,
    *,
    sender: str | None = None,
    media_url: str | None = None,
    media_type: str | None = None,
    buttons: Sequence[RcsButton] = (),
    cards: Sequence[Mapping[str, Any]] = (),
    fallback: Message | Sequence[Message] | None = None,
    customer_message_id: str | None = None,
    ttl: int | None = None,
    send_at: datetime | str | None = None,
    promotional: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Message:
    """An RCS message: text, optional media, up to 4 buttons, optionally a carousel of cards."""
    data: dict[str, Any] = {}
    if media_url is not None:
        data["media"] = _data(url=media_url, type=media_type or "image")
    if buttons:
        data["buttons"] = [b.to_json() for b in buttons]
    if cards:
        data["carousel"] = {"cards": [dict(c) for c in cards]}
    return _message(
        MessageType.RCS,
        to,
        text,
        data,
        sender=sender,
        customer_message_id=customer_message_id,
        ttl=ttl,
        send_at=send_at,
        promotional=promotional,
        fallback=fallback,
        extra=extra,
    )


def flashcall(
    to: str | None,
    caller_id: str,
    *,
    sender: str | None = None,
    fallback: Message | Sequence[Message] | None = None,
    customer_message_id: str | None = None,
    ttl: int | None = None,
    send_at: datetime | str | None = None,
    promotional: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Message:
    """A flash call from `caller_id` (E.164); the answer's `pattern` is what the user sees."""
    return _message(
        MessageType.FLASHCALL,
        to,
        None,
        {"callerId": caller_id},
        sender=sender,
        customer_message_id=customer_message_id,
        ttl=ttl,
        send_at=send_at,
        promotional=promotional,
        fallback=fallback,
        extra=extra,
    )
