"""Validation of one message of a send request (SPEC §2), on the send hot path.

``validate_message`` answers a :class:`NewMessage` or the first failing rule as a
:class:`Rejection`. Rules are checked in this order: ``type``, ``to``, ``from``,
``ttl``, ``text``, ``messageData``, ``customerMessageId``, ``callbackUrl``,
``fallback`` (each step of the chain in order: its type and place in the chain first,
then its fields in the same order as the primary's).

Decisions where the SPEC is silent:

- A wrongly typed field is rejected with the code of that field; ``customerMessageId``
  and ``callbackUrl`` have no code of their own and use ``INVALID_MESSAGE_DATA``.
- JSON ``null`` in an optional field (``text`` where optional, ``ttl``,
  ``messageData``, ``customerMessageId``, ``callbackUrl``, ``fallback``) means absent.
  Unknown top-level fields are ignored; unknown keys inside ``messageData`` are kept.
- ``type`` is case-sensitive. ``to`` is stored as given, so it must already be
  canonical E.164 (see :mod:`batgate.domain.phones`): no spaces, no national prefix.
- ``from``: 1-11 ASCII letters and digits with at least one letter; or ``+`` and
  8-15 digits (E.164 form, not checked against numbering plans); or 1-15 digits
  without ``+`` (short codes and long numbers).
- ``ttl``: a JSON integer (not a boolean, not ``60.0``, not ``"60"``), 1..max_ttl.
- ``text``: empty or whitespace-only counts as missing; where text is optional it is
  then stored as absent. A NUL or a surrogate code point (JSON ``"\\ud800"``) is
  ``INVALID_ENCODING``. Lengths: SMS by parts (SPEC §5); Viber and flash call at most
  1000 characters (code points), RCS at most 3072. A viber_promo without text, image
  and video, or a viber_trans without text and file, is ``MISSING_TEXT``.
- A NUL or surrogate anywhere in ``messageData`` (keys included) or in
  ``customerMessageId`` is ``INVALID_MESSAGE_DATA``.
- ``customerMessageId``: a string of at most 64 characters (empty allowed).
- ``messageData`` per type, see the checkers below; notably carousel items 2-5 (as
  Viber), survey options 1-5 non-blank strings, OTP ``code`` a string of 4-10 digits
  with ``validity`` a positive integer of seconds (both required), RCS carousel cards
  2-10, RCS ``openUrl`` buttons need a ``url``. The viber_promo short forms ``image``
  and ``button`` are replaced by ``img``, ``buttonText`` and ``buttonAction``; giving
  a short and a long form together is rejected.
- ``fallback``: an object is a chain of one, an empty array is no fallback (allowed on
  ``sms`` too). Steps inherit ``from``, ``to`` and ``ttl`` (the primary's effective
  ttl), never ``text`` or ``messageData``. A step may not have its own ``fallback``.
  Failures inside a step are ``INVALID_FALLBACK``: ``"fallback[1]: to: ... is not a
  valid E.164 number (...) [INVALID_RECIPIENT]"`` (``"fallback: ..."`` when given as an
  object; indexes count from 0).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from batgate.domain.messages import (
    CHANNEL_OF,
    Channel,
    ErrorCode,
    MessageType,
    NewMessage,
    Rejection,
    Step,
)
from batgate.domain.parts import sms_parts
from batgate.domain.phones import is_e164_form, is_valid_e164
from batgate.domain.urls import MAX_URL_LENGTH, is_http_url


@dataclass(frozen=True, slots=True)
class Limits:
    max_parts: int = 10  # SMS parts above this -> MESSAGE_TOO_LONG
    default_ttl: int = 86_400  # seconds, when a message sets no ttl
    max_ttl: int = 2_592_000


MAX_CUSTOMER_MESSAGE_ID: Final = 64
MAX_DATA_DEPTH: Final = 32  # messageData nesting; orjson stores at most ~254 levels
MAX_TEXT_CHARS: Final[dict[Channel, int]] = {
    Channel.VIBER: 1000,
    Channel.RCS: 3072,
    Channel.FLASHCALL: 1000,
}
TEXT_REQUIRED: Final = frozenset({MessageType.SMS, MessageType.VIBER_SURVEY, MessageType.RCS})
RCS_BUTTON_ACTIONS: Final = ("openUrl", "dial", "shareLocation", "createCalendarEvent")

_TYPES: Final = {t.value: t for t in MessageType}
_TYPE_LIST: Final = ", ".join(_TYPES)
_SENDER: Final = re.compile(r"(?=[0-9]*[A-Za-z])[A-Za-z0-9]{1,11}|\+[1-9][0-9]{7,14}|[0-9]{1,15}")
_BAD_CHAR: Final = re.compile("[\x00\ud800-\udfff]")
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_LANG: Final = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")
_OTP_CODE: Final = re.compile(r"[0-9]{4,10}")
_JSON_TYPES: Final = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}

_FALLBACK: Final = ErrorCode.INVALID_FALLBACK
_DATA: Final = ErrorCode.INVALID_MESSAGE_DATA

JsonObject = dict[str, Any]


class _Invalid(Exception):
    """The first failing rule; turned into a Rejection at the module boundary."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def validate_message(raw: JsonObject, limits: Limits) -> NewMessage | Rejection:
    """Judge one element of a send request's ``messages`` array."""
    try:
        return _message(raw, limits)
    except _Invalid as exc:
        return Rejection(exc.code, exc.message)


def _message(raw: JsonObject, limits: Limits) -> NewMessage:
    primary = _step(raw, _message_type(raw.get("type")), None, limits)
    customer_id = _customer_message_id(raw.get("customerMessageId"))
    callback_url = raw.get("callbackUrl")
    if callback_url is not None:
        _url(callback_url, "callbackUrl")
    fallbacks = _fallbacks(raw.get("fallback"), primary, limits)
    return NewMessage(customer_id, (primary, *fallbacks), callback_url)


def _step(raw: JsonObject, mtype: MessageType, base: Step | None, limits: Limits) -> Step:
    to, sender, ttl = _addressing(raw, base, limits)
    text, parts = _text(raw.get("text"), mtype, limits)
    data = _message_data(raw.get("messageData"), mtype, text)
    return Step(
        type=mtype, to=to, sender=sender, text=text, message_data=data, ttl=ttl, parts=parts
    )


def _addressing(raw: JsonObject, base: Step | None, limits: Limits) -> tuple[str, str, int]:
    """``to``, ``from`` and ``ttl``: a fallback step inherits what it does not set."""
    to, sender, ttl = raw.get("to"), raw.get("from"), raw.get("ttl")
    if base is None:
        return _recipient(to), _sender(sender), _ttl(ttl, limits, limits.default_ttl)
    return (
        base.to if to is None else _recipient(to),
        base.sender if sender is None else _sender(sender),
        _ttl(ttl, limits, base.ttl),
    )


# --- scalar fields -----------------------------------------------------------------


def _message_type(value: object) -> MessageType:
    if value is None:
        raise _Invalid(ErrorCode.INVALID_TYPE, f"type: is required; one of {_TYPE_LIST}")
    mtype = _TYPES.get(value) if isinstance(value, str) else None
    if mtype is None:
        raise _Invalid(
            ErrorCode.INVALID_TYPE,
            f"type: {_show(value)} is not a message type; one of {_TYPE_LIST}",
        )
    return mtype


def _recipient(value: object) -> str:
    code = ErrorCode.INVALID_RECIPIENT
    if value is None:
        raise _Invalid(code, "to: is required")
    if not isinstance(value, str):
        raise _Invalid(code, f"to: must be a string, got {_json_type(value)}")
    if not is_valid_e164(value):
        why = "no such number" if is_e164_form(value) else "expected '+' and 8-15 digits"
        raise _Invalid(code, f"to: {_show(value)} is not a valid E.164 number ({why})")
    return value


def _sender(value: object) -> str:
    code = ErrorCode.INVALID_SENDER
    if value is None:
        raise _Invalid(code, "from: is required")
    if not isinstance(value, str):
        raise _Invalid(code, f"from: must be a string, got {_json_type(value)}")
    if _SENDER.fullmatch(value) is None:
        raise _Invalid(
            code,
            f"from: {_show(value)} is not a valid sender (1-11 letters and digits with at "
            "least one letter, or a number of up to 15 digits, optionally in E.164 form)",
        )
    return value


def _ttl(value: object, limits: Limits, default: int) -> int:
    if value is None:
        return default
    if type(value) is not int:
        raise _Invalid(
            ErrorCode.INVALID_TTL,
            f"ttl: must be an integer number of seconds, got {_json_type(value)}",
        )
    if not 1 <= value <= limits.max_ttl:
        raise _Invalid(
            ErrorCode.INVALID_TTL, f"ttl: {value} is out of range 1..{limits.max_ttl} seconds"
        )
    return value


def _text(value: object, mtype: MessageType, limits: Limits) -> tuple[str | None, int]:
    """The text (None when absent and allowed) and its number of parts."""
    if value is None or value == "" or (isinstance(value, str) and value.isspace()):
        if mtype in TEXT_REQUIRED:
            raise _Invalid(ErrorCode.MISSING_TEXT, f"text: is required for type {mtype}")
        return None, 1
    if not isinstance(value, str):
        raise _Invalid(ErrorCode.MISSING_TEXT, f"text: must be a string, got {_json_type(value)}")
    bad = _bad_char(value)
    if bad is not None:
        raise _Invalid(ErrorCode.INVALID_ENCODING, f"text: {bad}")
    if mtype is MessageType.SMS:
        parts = sms_parts(value).parts
        if parts > limits.max_parts:
            raise _Invalid(
                ErrorCode.MESSAGE_TOO_LONG,
                f"text: needs {parts} SMS parts, more than the maximum of {limits.max_parts}",
            )
        return value, parts
    limit = MAX_TEXT_CHARS[CHANNEL_OF[mtype]]
    if len(value) > limit:
        raise _Invalid(
            ErrorCode.MESSAGE_TOO_LONG,
            f"text: {len(value)} characters, more than the {limit} allowed for {mtype}",
        )
    return value, 1


def _customer_message_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(_DATA, f"customerMessageId: must be a string, got {_json_type(value)}")
    if len(value) > MAX_CUSTOMER_MESSAGE_ID:
        raise _Invalid(
            _DATA,
            f"customerMessageId: {len(value)} characters, more than {MAX_CUSTOMER_MESSAGE_ID}",
        )
    bad = _bad_char(value)
    if bad is not None:
        raise _Invalid(_DATA, f"customerMessageId: {bad}")
    return value


# --- fallback chain ----------------------------------------------------------------


def _fallbacks(value: object, primary: Step, limits: Limits) -> list[Step]:
    if value is None:
        return []
    if isinstance(value, dict):
        items: list[Any] = [value]
        labels = ["fallback"]
    elif isinstance(value, list):
        items = value
        labels = [f"fallback[{i}]" for i in range(len(value))]
    else:
        raise _Invalid(
            _FALLBACK, f"fallback: must be an object or an array, got {_json_type(value)}"
        )
    if items and primary.type is MessageType.SMS:
        raise _Invalid(_FALLBACK, "fallback: not allowed on type sms (sms can only be last)")
    used = {primary.channel: "the primary step"}
    steps = []
    for index, (item, label) in enumerate(zip(items, labels, strict=True)):
        try:
            step = _fallback_step(item, used, index == len(items) - 1, primary, limits)
        except _Invalid as exc:
            suffix = "" if exc.code is _FALLBACK else f" [{exc.code}]"
            raise _Invalid(_FALLBACK, f"{label}: {exc.message}{suffix}") from None
        used[step.channel] = label
        steps.append(step)
    return steps


def _fallback_step(
    item: object, used: dict[Channel, str], last: bool, primary: Step, limits: Limits
) -> Step:
    if not isinstance(item, dict):
        raise _Invalid(_FALLBACK, f"must be an object, got {_json_type(item)}")
    mtype = _message_type(item.get("type"))
    channel = CHANNEL_OF[mtype]
    if channel in used:
        raise _Invalid(
            _FALLBACK, f"type: {mtype} uses channel {channel}, already used by {used[channel]}"
        )
    if mtype is MessageType.SMS and not last:
        raise _Invalid(_FALLBACK, "type: sms can only be the last step of a chain")
    if item.get("fallback") is not None:
        raise _Invalid(
            _FALLBACK, "fallback: a step cannot have its own; give the chain as an array"
        )
    return _step(item, mtype, primary, limits)


# --- messageData -------------------------------------------------------------------

_Checker = Callable[[JsonObject | None, str | None], JsonObject | None]


def _message_data(value: object, mtype: MessageType, text: str | None) -> JsonObject | None:
    if value is not None:
        if not isinstance(value, dict):
            raise _Invalid(_DATA, f"messageData: must be an object, got {_json_type(value)}")
        _check_strings(value)
    return _CHECKERS[mtype](value, text)


def _check_strings(data: JsonObject) -> None:
    """Every key and string in ``data`` must be storable text (no NUL, no surrogate),
    nested at most ``MAX_DATA_DEPTH`` levels (deeper JSON cannot be stored)."""
    stack: list[tuple[str, object, int]] = [("messageData", data, 1)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DATA_DEPTH and isinstance(value, dict | list):
            raise _Invalid(_DATA, f"{path}: nested more than {MAX_DATA_DEPTH} levels deep")
        if isinstance(value, str):
            bad = _bad_char(value)
            if bad is not None:
                raise _Invalid(_DATA, f"{path}: {bad}")
        elif isinstance(value, dict):
            for key, item in value.items():
                bad = _bad_char(key) if isinstance(key, str) else "has a key that is not text"
                if bad is not None:
                    raise _Invalid(_DATA, f"{path}: a key {bad}")
                stack.append((f"{path}.{key}", item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))


def _free(data: JsonObject | None, text: str | None) -> JsonObject | None:
    """Types with no messageData rules (sms): an object is kept as given."""
    return None if data is None else dict(data)


def _required(data: JsonObject | None, mtype: MessageType) -> JsonObject:
    if data is None:
        raise _Invalid(_DATA, f"messageData: is required for type {mtype}")
    return dict(data)


_PROMO_EMPTY: Final = "text: viber_promo needs a text, an image or a video"


def _viber_promo(data: JsonObject | None, text: str | None) -> JsonObject | None:
    if data is None:
        if text is None:
            raise _Invalid(ErrorCode.MISSING_TEXT, _PROMO_EMPTY)
        return None
    out = _promo_long_form(dict(data))
    for key in ("img", "video", "thumbnail"):
        _optional_url(out, key)
    for key in ("fileSize", "duration"):
        if out.get(key) is not None:
            _positive_int(out[key], f"messageData.{key}")
    label, action = out.get("buttonText"), out.get("buttonAction")
    if (label is None) != (action is None):
        raise _Invalid(_DATA, "messageData: a button needs both buttonText and buttonAction")
    if label is not None:
        _non_blank(label, "messageData.buttonText")
        _url(action, "messageData.buttonAction")
    if text is None and out.get("img") is None and out.get("video") is None:
        raise _Invalid(ErrorCode.MISSING_TEXT, _PROMO_EMPTY)
    return out


def _promo_long_form(out: JsonObject) -> JsonObject:
    """Replace the short forms ``image`` and ``button: {text, url}``."""
    if "image" in out:
        if "img" in out:
            raise _Invalid(_DATA, "messageData: give img or image, not both")
        out["img"] = out.pop("image")
    if "button" in out:
        if "buttonText" in out or "buttonAction" in out:
            raise _Invalid(_DATA, "messageData: give button or buttonText/buttonAction, not both")
        button = out.pop("button")
        if button is not None:
            button = _object(button, "messageData.button")
            out["buttonText"] = _non_blank(button.get("text"), "messageData.button.text")
            out["buttonAction"] = _url(button.get("url"), "messageData.button.url")
    return out


def _viber_trans(data: JsonObject | None, text: str | None) -> JsonObject | None:
    out = None if data is None else dict(data)
    file_url = None if out is None else _optional_url(out, "fileUrl")
    if out is not None:
        if out.get("fileName") is not None:
            _non_blank(out["fileName"], "messageData.fileName")
        file_type = out.get("fileType")
        if file_type is not None and file_type != "pdf":
            raise _Invalid(_DATA, f"messageData.fileType: {_show(file_type)} is not 'pdf'")
        if file_url is None and (out.get("fileName") is not None or file_type is not None):
            raise _Invalid(_DATA, "messageData.fileUrl: is required with fileName or fileType")
    if text is None and file_url is None:
        raise _Invalid(ErrorCode.MISSING_TEXT, "text: viber_trans needs a text or a file (fileUrl)")
    return out


def _viber_carousel(data: JsonObject | None, text: str | None) -> JsonObject | None:
    out = _required(data, MessageType.VIBER_CAROUSEL)
    carousel = _object(out.get("carousel"), "messageData.carousel")
    items = _array(carousel.get("items"), "messageData.carousel.items", 2, 5)
    for i, item in enumerate(items):
        path = f"messageData.carousel.items[{i}]"
        card = _object(item, path)
        _non_blank(card.get("title"), f"{path}.title")
        _url(card.get("imageUrl"), f"{path}.imageUrl")
        _viber_button(card.get("primaryButton"), f"{path}.primaryButton")
        if card.get("secondaryButton") is not None:
            _viber_button(card["secondaryButton"], f"{path}.secondaryButton")
    return out


def _viber_button(value: object, path: str) -> None:
    button = _object(value, path)
    _non_blank(button.get("text"), f"{path}.text")
    _url(button.get("url"), f"{path}.url")


def _viber_survey(data: JsonObject | None, text: str | None) -> JsonObject | None:
    out = _required(data, MessageType.VIBER_SURVEY)
    survey = _object(out.get("survey"), "messageData.survey")
    options = _array(survey.get("options"), "messageData.survey.options", 1, 5)
    for i, option in enumerate(options):
        _non_blank(option, f"messageData.survey.options[{i}]")
    return out


def _viber_otp(data: JsonObject | None, text: str | None) -> JsonObject | None:
    out = _required(data, MessageType.VIBER_OTP)
    template, code = out.get("templateId"), out.get("code")
    if template is not None and code is not None:
        raise _Invalid(_DATA, "messageData: give either templateId or code, not both")
    if template is not None:
        if not isinstance(template, str) or _UUID.fullmatch(template) is None:
            raise _Invalid(_DATA, f"messageData.templateId: {_show(template)} is not a UUID")
        lang = out.get("templateLang")
        if not isinstance(lang, str) or _LANG.fullmatch(lang) is None:
            raise _Invalid(_DATA, f"messageData.templateLang: {_show(lang)} is not a language code")
        if out.get("templateParams") is not None:
            _object(out["templateParams"], "messageData.templateParams")
    elif code is not None:
        if not isinstance(code, str) or _OTP_CODE.fullmatch(code) is None:
            raise _Invalid(_DATA, f"messageData.code: {_show(code)} is not a string of 4-10 digits")
        _positive_int(out.get("validity"), "messageData.validity")
    else:
        raise _Invalid(_DATA, "messageData: viber_otp needs templateId or code")
    return out


def _rcs(data: JsonObject | None, text: str | None) -> JsonObject | None:
    if data is None:
        return None
    out = dict(data)
    _rcs_content(out, "messageData")
    if out.get("carousel") is not None:
        carousel = _object(out["carousel"], "messageData.carousel")
        cards = _array(carousel.get("cards"), "messageData.carousel.cards", 2, 10)
        for i, card in enumerate(cards):
            path = f"messageData.carousel.cards[{i}]"
            _rcs_content(_object(card, path), path)
    return out


def _rcs_content(obj: JsonObject, path: str) -> None:
    """``media`` and ``buttons`` of an RCS message or carousel card."""
    if obj.get("media") is not None:
        media = _object(obj["media"], f"{path}.media")
        _url(media.get("url"), f"{path}.media.url")
        _non_blank(media.get("type"), f"{path}.media.type")
    if obj.get("buttons") is not None:
        buttons = _array(obj["buttons"], f"{path}.buttons", 0, 4)
        for i, item in enumerate(buttons):
            _rcs_button(item, f"{path}.buttons[{i}]")


def _rcs_button(value: object, path: str) -> None:
    button = _object(value, path)
    action = button.get("action")
    if action not in RCS_BUTTON_ACTIONS:
        raise _Invalid(
            _DATA,
            f"{path}.action: {_show(action)} is not one of {', '.join(RCS_BUTTON_ACTIONS)}",
        )
    _non_blank(button.get("text"), f"{path}.text")
    if action == "openUrl":
        _url(button.get("url"), f"{path}.url")


def _flashcall(data: JsonObject | None, text: str | None) -> JsonObject | None:
    out = _required(data, MessageType.FLASHCALL)
    caller = out.get("callerId")
    if not isinstance(caller, str) or not is_e164_form(caller):
        raise _Invalid(
            _DATA,
            f"messageData.callerId: {_show(caller)} is not in E.164 form ('+' and 8-15 digits)",
        )
    return out


_CHECKERS: Final[dict[MessageType, _Checker]] = {
    MessageType.SMS: _free,
    MessageType.VIBER_PROMO: _viber_promo,
    MessageType.VIBER_TRANS: _viber_trans,
    MessageType.VIBER_CAROUSEL: _viber_carousel,
    MessageType.VIBER_SURVEY: _viber_survey,
    MessageType.VIBER_OTP: _viber_otp,
    MessageType.RCS: _rcs,
    MessageType.FLASHCALL: _flashcall,
}


# --- small checks ------------------------------------------------------------------


def _object(value: object, path: str) -> JsonObject:
    if not isinstance(value, dict):
        raise _Invalid(_DATA, f"{path}: must be an object, got {_json_type(value)}")
    return value


def _array(value: object, path: str, least: int, most: int) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(_DATA, f"{path}: must be an array, got {_json_type(value)}")
    if not least <= len(value) <= most:
        raise _Invalid(_DATA, f"{path}: has {len(value)} entries, expected {least} to {most}")
    return value


def _non_blank(value: object, path: str) -> str:
    if not isinstance(value, str) or not value or value.isspace():
        raise _Invalid(_DATA, f"{path}: must be a non-empty string, got {_show(value)}")
    return value


def _positive_int(value: object, path: str) -> int:
    if type(value) is not int or value < 1:
        raise _Invalid(_DATA, f"{path}: must be a positive integer, got {_show(value)}")
    return value


def _optional_url(data: JsonObject, key: str) -> str | None:
    value = data.get(key)
    return None if value is None else _url(value, f"messageData.{key}")


def _url(value: object, path: str) -> str:
    """An absolute http(s) URL of at most 2048 characters, without spaces or controls."""
    if not isinstance(value, str):
        raise _Invalid(_DATA, f"{path}: must be a URL string, got {_json_type(value)}")
    if len(value) > MAX_URL_LENGTH:
        raise _Invalid(_DATA, f"{path}: {len(value)} characters, more than {MAX_URL_LENGTH}")
    if not is_http_url(value):
        raise _Invalid(_DATA, f"{path}: {_show(value)} is not an absolute http(s) URL")
    return value


def _bad_char(value: str) -> str | None:
    """What makes ``value`` unstorable as text (a NUL, a surrogate), or None."""
    if value.isascii():
        position = value.find("\x00")
        return None if position < 0 else f"contains a NUL character at position {position}"
    found = _BAD_CHAR.search(value)
    if found is None:
        return None
    char, position = found.group(), found.start()
    if char == "\x00":
        return f"contains a NUL character at position {position}"
    return f"contains a lone surrogate U+{ord(char):04X} at position {position}"


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    """A short, printable rendering of a caller's value (repr escapes NUL, surrogates)."""
    scalar = isinstance(value, (str, int, float)) and not isinstance(value, bool)
    shown = repr(value) if scalar else _json_type(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
