"""``messageData`` of each message type (SPEC §2): one checker per type. Pure.

A checker gets the message's ``messageData`` (None when absent) and its text, and
answers the normalised ``messageData`` to store, or raises :class:`Invalid`.

RCS buttons (in ``buttons`` and in each carousel card's ``buttons``) are
``{text, action: {type, ...}}``, the action an object exactly as in SMSBAT's rcs.md
(SPEC §2). By ``action.type``: ``openUrl`` needs ``url`` (absolute http(s));
``dial`` needs ``phoneNumber`` in E.164 form (``+`` and 8-15 digits, as a flash call's
``callerId``); ``shareLocation`` needs nothing; ``createCalendarEvent`` needs a
non-blank ``title`` and a ``startTime``, and takes an ``endTime`` (rcs.md's "Travel"
example has none), RFC 3339 date-times with an offset (``2025-01-25T14:00:00Z``),
the end not before the start. Other keys of an
action are kept. The former flat form (``"action": "openUrl"`` with ``url`` beside
it) is rejected, naming the object form. ``media.thumbnail``, when given, is a URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Final

from batgate.domain.checks import (
    DATA,
    Invalid,
    JsonObject,
    as_array,
    as_object,
    bad_char,
    json_type,
    non_blank,
    optional_url,
    positive_int,
    show,
    url_field,
)
from batgate.domain.messages import ErrorCode, MessageType
from batgate.domain.phones import is_e164_form

MAX_DATA_DEPTH: Final = 32  # messageData nesting; orjson stores at most ~254 levels
RCS_BUTTON_ACTIONS: Final = ("openUrl", "dial", "shareLocation", "createCalendarEvent")

_UUID: Final = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_LANG: Final = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")
_OTP_CODE: Final = re.compile(r"[0-9]{4,10}")
_TIMESTAMP: Final = re.compile(  # RFC 3339 date-time: an offset is required
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})"
)

_Checker = Callable[[JsonObject | None, str | None], JsonObject | None]


def check_message_data(value: object, mtype: MessageType, text: str | None) -> JsonObject | None:
    if value is not None:
        if not isinstance(value, dict):
            raise Invalid(DATA, f"messageData: must be an object, got {json_type(value)}")
        _check_strings(value)
    return CHECKERS[mtype](value, text)


def _check_strings(data: JsonObject) -> None:
    """Every key and string in ``data`` must be storable text (no NUL, no surrogate),
    nested at most ``MAX_DATA_DEPTH`` levels (deeper JSON cannot be stored)."""
    stack: list[tuple[str, object, int]] = [("messageData", data, 1)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DATA_DEPTH and isinstance(value, dict | list):
            raise Invalid(DATA, f"{path}: nested more than {MAX_DATA_DEPTH} levels deep")
        if isinstance(value, str):
            bad = bad_char(value)
            if bad is not None:
                raise Invalid(DATA, f"{path}: {bad}")
        elif isinstance(value, dict):
            for key, item in value.items():
                bad = bad_char(key) if isinstance(key, str) else "has a key that is not text"
                if bad is not None:
                    raise Invalid(DATA, f"{path}: a key {bad}")
                stack.append((f"{path}.{key}", item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))


def _free(data: JsonObject | None, text: str | None) -> JsonObject | None:
    """Types with no messageData rules (sms): an object is kept as given."""
    return None if data is None else dict(data)


def _required(data: JsonObject | None, mtype: MessageType) -> JsonObject:
    if data is None:
        raise Invalid(DATA, f"messageData: is required for type {mtype}")
    return dict(data)


_PROMO_EMPTY: Final = "text: viber_promo needs a text, an image or a video"


def _viber_promo(data: JsonObject | None, text: str | None) -> JsonObject | None:
    if data is None:
        if text is None:
            raise Invalid(ErrorCode.MISSING_TEXT, _PROMO_EMPTY)
        return None
    out = _promo_long_form(dict(data))
    for key in ("img", "video", "thumbnail"):
        optional_url(out, key)
    for key in ("fileSize", "duration"):
        if out.get(key) is not None:
            positive_int(out[key], f"messageData.{key}")
    label, action = out.get("buttonText"), out.get("buttonAction")
    if (label is None) != (action is None):
        raise Invalid(DATA, "messageData: a button needs both buttonText and buttonAction")
    if label is not None:
        non_blank(label, "messageData.buttonText")
        url_field(action, "messageData.buttonAction")
    if text is None and out.get("img") is None and out.get("video") is None:
        raise Invalid(ErrorCode.MISSING_TEXT, _PROMO_EMPTY)
    return out


def _promo_long_form(out: JsonObject) -> JsonObject:
    """Replace the short forms ``image`` and ``button: {text, url}``."""
    if "image" in out:
        if "img" in out:
            raise Invalid(DATA, "messageData: give img or image, not both")
        out["img"] = out.pop("image")
    if "button" in out:
        if "buttonText" in out or "buttonAction" in out:
            raise Invalid(DATA, "messageData: give button or buttonText/buttonAction, not both")
        button = out.pop("button")
        if button is not None:
            button = as_object(button, "messageData.button")
            out["buttonText"] = non_blank(button.get("text"), "messageData.button.text")
            out["buttonAction"] = url_field(button.get("url"), "messageData.button.url")
    return out


def _viber_trans(data: JsonObject | None, text: str | None) -> JsonObject | None:
    out = None if data is None else dict(data)
    file_url = None if out is None else optional_url(out, "fileUrl")
    if out is not None:
        if out.get("fileName") is not None:
            non_blank(out["fileName"], "messageData.fileName")
        file_type = out.get("fileType")
        if file_type is not None and file_type != "pdf":
            raise Invalid(DATA, f"messageData.fileType: {show(file_type)} is not 'pdf'")
        if file_url is None and (out.get("fileName") is not None or file_type is not None):
            raise Invalid(DATA, "messageData.fileUrl: is required with fileName or fileType")
    if text is None and file_url is None:
        raise Invalid(ErrorCode.MISSING_TEXT, "text: viber_trans needs a text or a file (fileUrl)")
    return out


def _viber_carousel(data: JsonObject | None, text: str | None) -> JsonObject | None:
    out = _required(data, MessageType.VIBER_CAROUSEL)
    carousel = as_object(out.get("carousel"), "messageData.carousel")
    items = as_array(carousel.get("items"), "messageData.carousel.items", 2, 5)
    for i, item in enumerate(items):
        path = f"messageData.carousel.items[{i}]"
        card = as_object(item, path)
        non_blank(card.get("title"), f"{path}.title")
        url_field(card.get("imageUrl"), f"{path}.imageUrl")
        _viber_button(card.get("primaryButton"), f"{path}.primaryButton")
        if card.get("secondaryButton") is not None:
            _viber_button(card["secondaryButton"], f"{path}.secondaryButton")
    return out


def _viber_button(value: object, path: str) -> None:
    button = as_object(value, path)
    non_blank(button.get("text"), f"{path}.text")
    url_field(button.get("url"), f"{path}.url")


def _viber_survey(data: JsonObject | None, text: str | None) -> JsonObject | None:
    out = _required(data, MessageType.VIBER_SURVEY)
    survey = as_object(out.get("survey"), "messageData.survey")
    options = as_array(survey.get("options"), "messageData.survey.options", 1, 5)
    for i, option in enumerate(options):
        non_blank(option, f"messageData.survey.options[{i}]")
    return out


def _viber_otp(data: JsonObject | None, text: str | None) -> JsonObject | None:
    out = _required(data, MessageType.VIBER_OTP)
    template, code = out.get("templateId"), out.get("code")
    if template is not None and code is not None:
        raise Invalid(DATA, "messageData: give either templateId or code, not both")
    if template is not None:
        if not isinstance(template, str) or _UUID.fullmatch(template) is None:
            raise Invalid(DATA, f"messageData.templateId: {show(template)} is not a UUID")
        lang = out.get("templateLang")
        if not isinstance(lang, str) or _LANG.fullmatch(lang) is None:
            raise Invalid(DATA, f"messageData.templateLang: {show(lang)} is not a language code")
        if out.get("templateParams") is not None:
            as_object(out["templateParams"], "messageData.templateParams")
    elif code is not None:
        if not isinstance(code, str) or _OTP_CODE.fullmatch(code) is None:
            raise Invalid(DATA, f"messageData.code: {show(code)} is not a string of 4-10 digits")
        positive_int(out.get("validity"), "messageData.validity")
    else:
        raise Invalid(DATA, "messageData: viber_otp needs templateId or code")
    return out


def _rcs(data: JsonObject | None, text: str | None) -> JsonObject | None:
    if data is None:
        return None
    out = dict(data)
    _rcs_content(out, "messageData")
    if out.get("carousel") is not None:
        carousel = as_object(out["carousel"], "messageData.carousel")
        cards = as_array(carousel.get("cards"), "messageData.carousel.cards", 2, 10)
        for i, card in enumerate(cards):
            path = f"messageData.carousel.cards[{i}]"
            _rcs_content(as_object(card, path), path)
    return out


def _rcs_content(obj: JsonObject, path: str) -> None:
    """``media`` and ``buttons`` of an RCS message or carousel card."""
    if obj.get("media") is not None:
        media = as_object(obj["media"], f"{path}.media")
        url_field(media.get("url"), f"{path}.media.url")
        non_blank(media.get("type"), f"{path}.media.type")
        if media.get("thumbnail") is not None:
            url_field(media["thumbnail"], f"{path}.media.thumbnail")
    if obj.get("buttons") is not None:
        buttons = as_array(obj["buttons"], f"{path}.buttons", 0, 4)
        for i, item in enumerate(buttons):
            _rcs_button(item, f"{path}.buttons[{i}]")


def _rcs_button(value: object, path: str) -> None:
    """``{text, action: {type, ...}}``: the action is an object, as in SMSBAT's rcs.md."""
    button = as_object(value, path)
    non_blank(button.get("text"), f"{path}.text")
    action = button.get("action")
    if isinstance(action, str) and action in RCS_BUTTON_ACTIONS:
        raise Invalid(
            DATA,
            f'{path}.action: must be an object such as {{"type": "{action}", ...}}, got string',
        )
    _rcs_action(as_object(action, f"{path}.action"), f"{path}.action")


def _rcs_action(action: JsonObject, path: str) -> None:
    kind = action.get("type")
    if kind not in RCS_BUTTON_ACTIONS:
        raise Invalid(
            DATA, f"{path}.type: {show(kind)} is not one of {', '.join(RCS_BUTTON_ACTIONS)}"
        )
    if kind == "openUrl":
        url_field(action.get("url"), f"{path}.url")
    elif kind == "dial":
        number = action.get("phoneNumber")
        if not isinstance(number, str) or not is_e164_form(number):
            raise Invalid(
                DATA,
                f"{path}.phoneNumber: {show(number)} is not in E.164 form ('+' and 8-15 digits)",
            )
    elif kind == "createCalendarEvent":
        non_blank(action.get("title"), f"{path}.title")
        start = _timestamp(action.get("startTime"), f"{path}.startTime")
        if action.get("endTime") is not None:
            end = _timestamp(action["endTime"], f"{path}.endTime")
            if end < start:
                raise Invalid(
                    DATA, f"{path}.endTime: {show(action['endTime'])} is before startTime"
                )


def _timestamp(value: object, path: str) -> datetime:
    """An RFC 3339 date and time with its offset (``2025-01-25T14:00:00Z``)."""
    if value is None:
        raise Invalid(DATA, f"{path}: is required, e.g. '2025-01-25T14:00:00Z'")
    if isinstance(value, str) and _TIMESTAMP.fullmatch(value) is not None:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # the right shape, but no such date or time (2025-02-30, 25:00)
    raise Invalid(
        DATA,
        f"{path}: {show(value)} is not a date and time with its offset, "
        "e.g. '2025-01-25T14:00:00Z'",
    )


def _flashcall(data: JsonObject | None, text: str | None) -> JsonObject | None:
    out = _required(data, MessageType.FLASHCALL)
    caller = out.get("callerId")
    if not isinstance(caller, str) or not is_e164_form(caller):
        raise Invalid(
            DATA,
            f"messageData.callerId: {show(caller)} is not in E.164 form ('+' and 8-15 digits)",
        )
    return out


CHECKERS: Final[dict[MessageType, _Checker]] = {
    MessageType.SMS: _free,
    MessageType.VIBER_PROMO: _viber_promo,
    MessageType.VIBER_TRANS: _viber_trans,
    MessageType.VIBER_CAROUSEL: _viber_carousel,
    MessageType.VIBER_SURVEY: _viber_survey,
    MessageType.VIBER_OTP: _viber_otp,
    MessageType.RCS: _rcs,
    MessageType.FLASHCALL: _flashcall,
}
