"""How many SMS parts a text takes, and in which encoding (SPEC §5).

Every SMS accepted goes through this (the part count decides ``MESSAGE_TOO_LONG``), so
it sits on the send hot path: the common case (only basic GSM 03.38 characters) is one
precompiled regex scan and some arithmetic. Characters are walked only when a split
into several parts has to keep a two-unit character (escape + extension character,
or a UTF-16 surrogate pair) whole, and even then only the two-unit characters are
visited, not every character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet, in table order (row = high nibble). 0x1B is the escape
# to the extension table, so it has no character of its own. Written with escapes
# because several glyphs (Greek capitals, Ç vs ç) have look-alikes that would
# silently turn a text into UCS-2.
_GSM7_BASIC: Final = (
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\u00c6\u00e6\u00df\u00c9"
    " !\"#\u00a4%&'()*+,-./"
    "0123456789:;<=>?"
    "\u00a1ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7"
    "\u00bfabcdefghijklmno"
    "pqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
)
# The extension table: each costs two septets (escape + code).
_GSM7_EXTENSION: Final = "\f^{}\\[~]|\u20ac"

_GSM7_SINGLE: Final = 160
_GSM7_MULTI: Final = 153  # 7 septets go to the concatenation header
_UCS2_SINGLE: Final = 70
_UCS2_MULTI: Final = 67  # 6 bytes = 3 code units go to the concatenation header


def _not_in(chars: str) -> re.Pattern[str]:
    return re.compile("[^" + re.escape(chars) + "]")


# A regex character class is a bitmap lookup in C; it beats frozenset.issuperset and
# str.translate on the common ASCII-ish text.
_NOT_BASIC: Final = _not_in(_GSM7_BASIC)
_NOT_GSM7: Final = _not_in(_GSM7_BASIC + _GSM7_EXTENSION)
_EXTENSION: Final = re.compile("[" + re.escape(_GSM7_EXTENSION) + "]")
_ASTRAL: Final = re.compile("[\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class SmsParts:
    encoding: Encoding
    parts: int  # number of SMS segments (empty text -> 1 part)
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2, of the whole text


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 default or extension table."""
    return _NOT_GSM7.search(text) is None


def sms_parts(text: str) -> SmsParts:
    """Encoding, number of parts and size in units of ``text`` as one SMS."""
    length = len(text)
    if _NOT_BASIC.search(text) is None:
        return SmsParts("GSM-7", _evenly(length, _GSM7_SINGLE, _GSM7_MULTI), length)
    if _NOT_GSM7.search(text) is None:
        return _gsm7_extended(text)
    return _ucs2(text)


def _evenly(units: int, single: int, multi: int) -> int:
    """Parts for a text of one-unit characters only, which may split anywhere."""
    if units <= single:
        return 1
    return -(-units // multi)


def _gsm7_extended(text: str) -> SmsParts:
    length = len(text)
    if length <= _GSM7_SINGLE:
        # Counting is about half the cost of collecting positions, and a text this
        # short mostly fits one part, where positions do not matter.
        units = length + len(_EXTENSION.findall(text))
        if units <= _GSM7_SINGLE:
            return SmsParts("GSM-7", 1, units)
    wide = [m.start() for m in _EXTENSION.finditer(text)]
    return SmsParts("GSM-7", _packed(length, wide, _GSM7_MULTI), length + len(wide))


def _ucs2(text: str) -> SmsParts:
    length = len(text)
    # surrogatepass: a lone surrogate (possible in a Python str) counts as one unit
    # instead of raising; it cannot be valid UTF-16 anyway.
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    if units <= _UCS2_SINGLE:
        return SmsParts("UCS-2", 1, units)
    if units == length:
        return SmsParts("UCS-2", _evenly(units, _UCS2_SINGLE, _UCS2_MULTI), units)
    wide = (m.start() for m in _ASTRAL.finditer(text))
    return SmsParts("UCS-2", _packed(length, wide, _UCS2_MULTI), units)


def _packed(count: int, wide_at: Iterable[int], capacity: int) -> int:
    """Parts for ``count`` characters of one unit, except those at ``wide_at`` (two).

    Greedy filling, as an encoder does it: one-unit characters split anywhere, a
    two-unit character that would straddle a boundary opens the next part instead,
    leaving the part before it one unit short. Runs between two-unit characters are added in one
    step, so the cost grows with the number of two-unit characters only.
    """
    parts, used, after_last = 1, 0, 0
    for index in wide_at:
        used += index - after_last
        if used > capacity:
            full = (used - 1) // capacity
            parts += full
            used -= full * capacity
        if used + 2 > capacity:
            parts += 1
            used = 2
        else:
            used += 2
        after_last = index + 1
    used += count - after_last
    if used > capacity:
        parts += (used - 1) // capacity
    return parts
