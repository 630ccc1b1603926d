"""Sending later (SPEC §12): `sendAt`, and the quiet hours that hold promotions. Pure.

`sendAt` (or SMSBAT Cascade's `scheduledTime`) is an RFC 3339 time with an offset;
a time in the past means now, and more than 35 days ahead is INVALID_SEND_AT. A
message sent later waits `scheduled` until then, and its TTL counts from then.

Quiet hours are an account's window of local time (`"21:00-08:00"`) in which
promotional messages are not handed to a carrier: one sent (or due) inside the
window waits until it ends. Promotional: the types `viber_promo`, `viber_carousel`
and `viber_survey`, and any message sent with `"promotional": true` — except the
transactional types and OTPs (`viber_trans`, `viber_otp`, `flashcall`), which are
never held. The local time is the account's time zone, or the recipient's
(`timezone = "recipient"`: the zone of the number's country, the first one
libphonenumber names where a country has several).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

from batgate.domain.checks import Invalid, JsonObject, json_type, show
from batgate.domain.messages import ErrorCode, MessageType

MAX_AHEAD: Final = 35 * 86_400  # seconds a message may be sent later at most
PROMOTIONAL_TYPES: Final = frozenset(
    {MessageType.VIBER_PROMO, MessageType.VIBER_CAROUSEL, MessageType.VIBER_SURVEY}
)
NEVER_HELD: Final = frozenset(
    {MessageType.VIBER_TRANS, MessageType.VIBER_OTP, MessageType.FLASHCALL}
)
RECIPIENT_ZONE: Final = "recipient"
_CODE: Final = ErrorCode.INVALID_SEND_AT
# RFC 3339 date-time: a date, "T" (or a space, as RFC 3339 allows), a time, an offset.
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)
_WINDOW: Final = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")


def send_at(raw: JsonObject, now: float) -> float | None:
    """When the message may be handed over (epoch seconds), or None: now.

    Raises Invalid(INVALID_SEND_AT) for a time that does not parse, has no offset,
    lies more than 35 days ahead, or disagrees with the other name's time."""
    given = [(name, raw[name]) for name in ("sendAt", "scheduledTime") if raw.get(name) is not None]
    if not given:
        return None
    times = [(name, _instant(name, value)) for name, value in given]
    if len(times) == 2 and times[0][1] != times[1][1]:
        raise Invalid(_CODE, "sendAt and scheduledTime name different times; give one of them")
    name, at = times[0]
    if at - now > MAX_AHEAD:
        raise Invalid(_CODE, f"{name}: {show(given[0][1])} is more than 35 days ahead")
    return at if at > now else None


def _instant(name: str, value: object) -> float:
    if not isinstance(value, str):
        raise Invalid(_CODE, f"{name}: must be an RFC 3339 string, got {json_type(value)}")
    if _RFC3339.fullmatch(value) is None:
        raise Invalid(
            _CODE,
            f"{name}: {show(value)} is not an RFC 3339 time with an offset, "
            "e.g. 2026-12-24T09:00:00+02:00 or 2026-12-24T07:00:00Z",
        )
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise Invalid(_CODE, f"{name}: {show(value)} is not a valid date and time") from None
    return parsed.timestamp()


def promotional_flag(raw: JsonObject) -> bool:
    """The message's `promotional` field: true, false or absent (null)."""
    value = raw.get("promotional")
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Invalid(
            ErrorCode.INVALID_MESSAGE_DATA,
            f"promotional: must be true or false, got {json_type(value)}",
        )
    return value


def is_held_type(mtype: MessageType, promotional: bool) -> bool:
    """Whether quiet hours hold a message of this type (and `promotional` flag)."""
    if mtype in NEVER_HELD:
        return False
    return promotional or mtype in PROMOTIONAL_TYPES


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A window of local time, `start` to `end`; across midnight when start > end."""

    start: time
    end: time
    zone: str  # an IANA time zone, or RECIPIENT_ZONE

    @classmethod
    def parse(cls, window: str, zone: str) -> QuietHours:
        """From `"21:00-08:00"` and a zone name; ValueError saying what is wrong."""
        match = _WINDOW.fullmatch(window.strip())
        if match is None:
            raise ValueError(f"{window!r} is not a window of local time like '21:00-08:00'")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h1, m1) == (h2, m2):
            raise ValueError(f"{window!r} starts and ends at the same time")
        if zone != RECIPIENT_ZONE:
            _zone(zone)  # raises for an unknown zone
        return cls(time(h1, m1), time(h2, m2), zone)

    def release(self, at: float, recipient: str) -> float | None:
        """When a promotion due at `at` to `recipient` may go: the window's end if `at`
        falls inside the window, else None (it may go at `at`)."""
        zone = recipient_zone(recipient) if self.zone == RECIPIENT_ZONE else _zone(self.zone)
        local = datetime.fromtimestamp(at, tz=zone)
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= clock < self.end
        else:
            inside = clock >= self.start or clock < self.end
        if not inside:
            return None
        end_day = local.date()
        if clock >= self.end and self.start > self.end:
            end_day += timedelta(days=1)  # in the evening part: it ends tomorrow morning
        ends = datetime.combine(end_day, self.end, tzinfo=zone)
        return max(ends.timestamp(), at)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a known time zone (an IANA name such as Europe/Kyiv)"
        ) from None


@lru_cache(maxsize=4096)
def recipient_zone(number: str) -> ZoneInfo:
    """The time zone of the number's country (UTC when libphonenumber knows none)."""
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        zones = ()
    for name in zones:
        try:
            return _zone(name)
        except ValueError:
            continue
    return ZoneInfo("UTC")
