"""Validation of one message of a send request (SPEC §2), on the send hot path.

``validate_message`` answers a :class:`NewMessage` or the first failing rule as a
:class:`Rejection`. Rules are checked in this order: ``type``, ``to``, ``from``,
``ttl``, ``text``, ``messageData``, ``customerMessageId``, ``callbackUrl``,
``fallback`` (each step of the chain in order: its type and place in the chain first,
then its fields in the same order as the primary's), then ``sendAt``/``scheduledTime``
and ``promotional`` (SPEC §12, :mod:`batgate.domain.schedule`).

Decisions where the SPEC is silent:

- A wrongly typed field is rejected with the code of that field; ``customerMessageId``
  has no code of its own and uses ``INVALID_MESSAGE_DATA``; a ``callbackUrl`` that is
  not an absolute http(s) URL is ``INVALID_CALLBACK_URL``, as is one pointing inside
  (judged by the API's ``api.callbacks``, which may resolve its name).
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
- ``messageData`` per type, see :mod:`batgate.domain.message_data`; notably carousel items 2-5 (as
  Viber), survey options 1-5 non-blank strings, OTP ``code`` a string of 4-10 digits
  with ``validity`` a positive integer of seconds (both required), RCS carousel cards
  2-10, RCS buttons ``{text, action: {type, ...}}`` with the action's own fields by
  its type (``openUrl`` + ``url``, ...). The viber_promo short forms ``image``
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
import time
from dataclasses import dataclass
from typing import Any, Final

from batgate.domain.checks import (
    DATA,
    Invalid,
    JsonObject,
    bad_char,
    json_type,
    show,
    url_field,
)
from batgate.domain.message_data import check_message_data
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
from batgate.domain.schedule import promotional_flag, send_at


@dataclass(frozen=True, slots=True)
class Limits:
    max_parts: int = 10  # SMS parts above this -> MESSAGE_TOO_LONG
    default_ttl: int = 86_400  # seconds, when a message sets no ttl
    max_ttl: int = 2_592_000


MAX_CUSTOMER_MESSAGE_ID: Final = 64
MAX_TEXT_CHARS: Final[dict[Channel, int]] = {
    Channel.VIBER: 1000,
    Channel.RCS: 3072,
    Channel.FLASHCALL: 1000,
}
TEXT_REQUIRED: Final = frozenset({MessageType.SMS, MessageType.VIBER_SURVEY, MessageType.RCS})
_TYPES: Final = {t.value: t for t in MessageType}
_TYPE_LIST: Final = ", ".join(_TYPES)
_SENDER: Final = re.compile(r"(?=[0-9]*[A-Za-z])[A-Za-z0-9]{1,11}|\+[1-9][0-9]{7,14}|[0-9]{1,15}")

_FALLBACK: Final = ErrorCode.INVALID_FALLBACK


def validate_message(
    raw: JsonObject, limits: Limits, now: float | None = None
) -> NewMessage | Rejection:
    """Judge one element of a send request's ``messages`` array; `now` (epoch seconds,
    by default the clock's) is what ``sendAt`` is judged against."""
    try:
        return _message(raw, limits, time.time() if now is None else now)
    except Invalid as exc:
        return Rejection(exc.code, exc.message)


def _message(raw: JsonObject, limits: Limits, now: float) -> NewMessage:
    primary = _step(raw, _message_type(raw.get("type")), None, limits)
    customer_id = _customer_message_id(raw.get("customerMessageId"))
    callback_url = raw.get("callbackUrl")
    if callback_url is not None:
        try:
            url_field(callback_url, "callbackUrl")
        except Invalid as exc:
            raise Invalid(ErrorCode.INVALID_CALLBACK_URL, exc.message) from None
    fallbacks = _fallbacks(raw.get("fallback"), primary, limits)
    later = send_at(raw, now) if "sendAt" in raw or "scheduledTime" in raw else None
    promotional = promotional_flag(raw) if "promotional" in raw else False
    return NewMessage(customer_id, (primary, *fallbacks), callback_url, later, promotional)


def _step(raw: JsonObject, mtype: MessageType, base: Step | None, limits: Limits) -> Step:
    to, sender, ttl = _addressing(raw, base, limits)
    text, parts = _text(raw.get("text"), mtype, limits)
    data = check_message_data(raw.get("messageData"), mtype, text)
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
        raise Invalid(ErrorCode.INVALID_TYPE, f"type: is required; one of {_TYPE_LIST}")
    mtype = _TYPES.get(value) if isinstance(value, str) else None
    if mtype is None:
        raise Invalid(
            ErrorCode.INVALID_TYPE,
            f"type: {show(value)} is not a message type; one of {_TYPE_LIST}",
        )
    return mtype


def _recipient(value: object) -> str:
    code = ErrorCode.INVALID_RECIPIENT
    if value is None:
        raise Invalid(code, "to: is required")
    if not isinstance(value, str):
        raise Invalid(code, f"to: must be a string, got {json_type(value)}")
    if not is_valid_e164(value):
        why = "no such number" if is_e164_form(value) else "expected '+' and 8-15 digits"
        raise Invalid(code, f"to: {show(value)} is not a valid E.164 number ({why})")
    return value


def _sender(value: object) -> str:
    code = ErrorCode.INVALID_SENDER
    if value is None:
        raise Invalid(code, "from: is required")
    if not isinstance(value, str):
        raise Invalid(code, f"from: must be a string, got {json_type(value)}")
    if _SENDER.fullmatch(value) is None:
        raise Invalid(
            code,
            f"from: {show(value)} is not a valid sender (1-11 letters and digits with at "
            "least one letter, or a number of up to 15 digits, optionally in E.164 form)",
        )
    return value


def _ttl(value: object, limits: Limits, default: int) -> int:
    if value is None:
        return default
    if type(value) is not int:
        raise Invalid(
            ErrorCode.INVALID_TTL,
            f"ttl: must be an integer number of seconds, got {json_type(value)}",
        )
    if not 1 <= value <= limits.max_ttl:
        raise Invalid(
            ErrorCode.INVALID_TTL, f"ttl: {value} is out of range 1..{limits.max_ttl} seconds"
        )
    return value


def _text(value: object, mtype: MessageType, limits: Limits) -> tuple[str | None, int]:
    """The text (None when absent and allowed) and its number of parts."""
    if value is None or value == "" or (isinstance(value, str) and value.isspace()):
        if mtype in TEXT_REQUIRED:
            raise Invalid(ErrorCode.MISSING_TEXT, f"text: is required for type {mtype}")
        return None, 1
    if not isinstance(value, str):
        raise Invalid(ErrorCode.MISSING_TEXT, f"text: must be a string, got {json_type(value)}")
    bad = bad_char(value)
    if bad is not None:
        raise Invalid(ErrorCode.INVALID_ENCODING, f"text: {bad}")
    if mtype is MessageType.SMS:
        parts = sms_parts(value).parts
        if parts > limits.max_parts:
            raise Invalid(
                ErrorCode.MESSAGE_TOO_LONG,
                f"text: needs {parts} SMS parts, more than the maximum of {limits.max_parts}",
            )
        return value, parts
    limit = MAX_TEXT_CHARS[CHANNEL_OF[mtype]]
    if len(value) > limit:
        raise Invalid(
            ErrorCode.MESSAGE_TOO_LONG,
            f"text: {len(value)} characters, more than the {limit} allowed for {mtype}",
        )
    return value, 1


def _customer_message_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(DATA, f"customerMessageId: must be a string, got {json_type(value)}")
    if len(value) > MAX_CUSTOMER_MESSAGE_ID:
        raise Invalid(
            DATA,
            f"customerMessageId: {len(value)} characters, more than {MAX_CUSTOMER_MESSAGE_ID}",
        )
    bad = bad_char(value)
    if bad is not None:
        raise Invalid(DATA, f"customerMessageId: {bad}")
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
        raise Invalid(_FALLBACK, f"fallback: must be an object or an array, got {json_type(value)}")
    if items and primary.type is MessageType.SMS:
        raise Invalid(_FALLBACK, "fallback: not allowed on type sms (sms can only be last)")
    used = {primary.channel: "the primary step"}
    steps = []
    for index, (item, label) in enumerate(zip(items, labels, strict=True)):
        try:
            step = _fallback_step(item, used, index == len(items) - 1, primary, limits)
        except Invalid as exc:
            suffix = "" if exc.code is _FALLBACK else f" [{exc.code}]"
            raise Invalid(_FALLBACK, f"{label}: {exc.message}{suffix}") from None
        used[step.channel] = label
        steps.append(step)
    return steps


def _fallback_step(
    item: object, used: dict[Channel, str], last: bool, primary: Step, limits: Limits
) -> Step:
    if not isinstance(item, dict):
        raise Invalid(_FALLBACK, f"must be an object, got {json_type(item)}")
    mtype = _message_type(item.get("type"))
    channel = CHANNEL_OF[mtype]
    if channel in used:
        raise Invalid(
            _FALLBACK, f"type: {mtype} uses channel {channel}, already used by {used[channel]}"
        )
    if mtype is MessageType.SMS and not last:
        raise Invalid(_FALLBACK, "type: sms can only be the last step of a chain")
    if item.get("fallback") is not None:
        raise Invalid(_FALLBACK, "fallback: a step cannot have its own; give the chain as an array")
    return _step(item, mtype, primary, limits)
