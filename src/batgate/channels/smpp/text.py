"""A message's text as SMPP carries it: an alphabet (`data_coding`) and its parts. Pure.

Alphabets, by `data_coding`:

- 0x00, the SMSC's default alphabet, sent as GSM 03.38: one septet per octet
  ("unpacked", what most SMSCs want over SMPP) or packed eight septets to seven
  octets, as the air interface carries it;
- 0x03, Latin-1 (ISO-8859-1);
- 0x08, UCS-2 (UTF-16 big-endian; characters beyond the BMP as surrogate pairs).

A long text is split the way batgate counted its parts at accept time
(:mod:`batgate.domain.parts`): 153 GSM-7 septets or 67 UCS-2 units a part, never
cutting an escape sequence or a surrogate pair, so the parts sent are the parts
billed. The parts are tied together by a user data header (8-bit reference, or
16-bit with one unit less room), by the `sar_*` TLVs, or not split at all and sent
whole in `message_payload`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from batgate.channels.smpp.pdu import Tag, Tlv
from batgate.domain.parts import is_gsm7

Split = Literal["udh", "udh16", "sar", "payload"]
Alphabet = Literal["auto", "latin1", "ucs2"]

GSM7: Final = 0x00
LATIN1: Final = 0x03
UCS2: Final = 0x08
UDHI: Final = 0x40  # esm_class: the short message starts with a user data header

# GSM 03.38, the same tables as batgate.domain.parts (written out here by code point
# so the septet of a character is its index).
_BASIC: Final = (
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\x1b\u00c6\u00e6\u00df\u00c9"
    " !\"#\u00a4%&'()*+,-./0123456789:;<=>?"
    "\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7"
    "\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
)
_EXTENSION: Final = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "\u20ac": 0x65,
}
_ESCAPE: Final = 0x1B
# Character → its septets (one, or escape + code): str.translate-ready.
_TO_SEPTETS: Final[dict[int, bytes]] = {
    **{ord(c): bytes((i,)) for i, c in enumerate(_BASIC) if i != _ESCAPE},
    **{ord(c): bytes((_ESCAPE, code)) for c, code in _EXTENSION.items()},
}

# (whole message, one part of several) in units, per header: GSM-7 septets,
# Latin-1 octets, UCS-2 code units. The 8-bit UDH (6 octets) costs 7 septets, 6
# octets or 3 units; the 16-bit one (7 octets) 8 septets, 7 octets or 4 units.
_ROOM: Final = {
    (GSM7, "udh"): (160, 153),
    (GSM7, "udh16"): (160, 152),
    (GSM7, "sar"): (160, 153),
    (LATIN1, "udh"): (140, 134),
    (LATIN1, "udh16"): (140, 133),
    (LATIN1, "sar"): (140, 134),
    (UCS2, "udh"): (70, 67),
    (UCS2, "udh16"): (70, 66),
    (UCS2, "sar"): (70, 67),
}


@dataclass(frozen=True, slots=True)
class Segment:
    """One submit_sm's worth of the text: its short_message, esm_class bits and TLVs."""

    short_message: bytes
    esm_class: int = 0
    tlvs: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class Encoded:
    data_coding: int
    segments: tuple[Segment, ...]


def choose_coding(text: str, alphabet: Alphabet) -> int:
    """The data_coding a text goes in: GSM-7 when it fits, else Latin-1 (if asked) or UCS-2."""
    if alphabet == "ucs2":
        return UCS2
    if alphabet == "latin1":
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            return UCS2
        return LATIN1
    return GSM7 if is_gsm7(text) else UCS2


def encode_text(
    text: str, *, alphabet: Alphabet, split: Split, packed: bool, reference: int
) -> Encoded:
    """`text` as the submit_sm parts that carry it; `reference` ties the parts together
    (taken modulo 256 for an 8-bit UDH, 65536 otherwise)."""
    coding = choose_coding(text, alphabet)
    units = _units(text, coding)
    if split == "payload":
        data = _octets(b"".join(units), coding, packed)
        return Encoded(coding, (Segment(b"", 0, (Tlv(Tag.MESSAGE_PAYLOAD, data),)),))
    whole, room = _ROOM[(coding, split)]
    if sum(len(u) for u in units) <= whole * (2 if coding == UCS2 else 1):
        return Encoded(coding, (Segment(_octets(b"".join(units), coding, packed)),))
    chunks = _chunks(units, room * (2 if coding == UCS2 else 1))
    total = len(chunks)
    if total > 255:
        raise ValueError(f"text needs {total} parts, more than SMPP's 255")
    segments = tuple(
        _segment(chunk, coding, packed, split, reference, total, index)
        for index, chunk in enumerate(chunks, start=1)
    )
    return Encoded(coding, segments)


def _units(text: str, coding: int) -> list[bytes]:
    """The text as a list of its characters' encodings (1–2 septets, 1 octet, 2–4 octets)."""
    if coding == GSM7:
        return [_TO_SEPTETS[ord(c)] for c in text]
    if coding == LATIN1:
        return [bytes((ord(c),)) for c in text]
    return [c.encode("utf-16-be", "surrogatepass") for c in text]


def _chunks(units: Sequence[bytes], room: int) -> list[bytes]:
    """Greedy: characters in order, a character that would not fit opens the next part."""
    chunks: list[bytes] = []
    current = bytearray()
    for unit in units:
        if len(current) + len(unit) > room:
            chunks.append(bytes(current))
            current = bytearray()
        current += unit
    chunks.append(bytes(current))
    return chunks


def _segment(
    chunk: bytes, coding: int, packed: bool, split: Split, ref: int, total: int, index: int
) -> Segment:
    if split == "sar":
        tlvs = (
            Tlv.integer(Tag.SAR_MSG_REF_NUM, ref % 65536, 2),
            Tlv.integer(Tag.SAR_TOTAL_SEGMENTS, total, 1),
            Tlv.integer(Tag.SAR_SEGMENT_SEQNUM, index, 1),
        )
        return Segment(_octets(chunk, coding, packed), 0, tlvs)
    if split == "udh16":
        udh = bytes((6, 0x08, 4, (ref >> 8) & 0xFF, ref & 0xFF, total, index))
    else:
        udh = bytes((5, 0x00, 3, ref % 256, total, index))
    if coding == GSM7 and packed:
        # The septets start on a septet boundary after the header: fill bits first.
        fill = (7 - (len(udh) * 8) % 7) % 7
        return Segment(udh + pack_septets(chunk, fill), UDHI)
    return Segment(udh + chunk, UDHI)


def _octets(units: bytes, coding: int, packed: bool) -> bytes:
    return pack_septets(units) if coding == GSM7 and packed else units


# -- GSM 03.38 septets ----------------------------------------------------------------


def pack_septets(septets: bytes, fill: int = 0) -> bytes:
    """Pack 7-bit septets into octets, least significant bit first (GSM 03.38 §6.1.2.1),
    after `fill` zero bits (to align the septets after a user data header)."""
    value = 0
    for i, septet in enumerate(septets):
        value |= (septet & 0x7F) << (fill + 7 * i)
    bits = fill + 7 * len(septets)
    size = (bits + 7) // 8
    if size * 8 - bits == 7:
        # Seven spare bits would read as one more septet, '@': GSM 03.38 §6.1.2.3.1
        # fills them with CR, which a receiver drops.
        value |= 0x0D << bits
    return value.to_bytes(size, "little")
