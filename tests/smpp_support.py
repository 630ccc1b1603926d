"""What SMPP tests share, written independently of batgate's codec: the GSM 03.38 table
from the standard (by septet), and putting a long message's parts back together from
their UDH or `sar_*` TLVs, or `message_payload`.

Imported by name (tests are not a package), from unit and integration tests alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

GSM7, LATIN1, UCS2 = 0x00, 0x03, 0x08
UDHI = 0x40
TAG_SAR_REF, TAG_SAR_TOTAL, TAG_SAR_SEQ = 0x020C, 0x020E, 0x020F
TAG_PAYLOAD = 0x0424

# 3GPP TS 23.038 table 6.2.1, septet 0x00 … 0x7F as code points (0x1B: the escape).
SEPTET_TO_CODE_POINT: list[int | None] = (
    [0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D, 0xC5, 0xE5]
    + [0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, None]
    + [0xC6, 0xE6, 0xDF, 0xC9, 0x20, 0x21, 0x22, 0x23, 0xA4]
    + list(range(0x25, 0x40))
    + [0xA1]
    + list(range(0x41, 0x5B))
    + [0xC4, 0xD6, 0xD1, 0xDC, 0xA7, 0xBF]
    + list(range(0x61, 0x7B))
    + [0xE4, 0xF6, 0xF1, 0xFC, 0xE0]
)
EXTENSION = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~"}
EXTENSION |= {0x3E: "]", 0x40: "|", 0x65: "\u20ac"}
GSM_CHARS = "".join(chr(c) for c in SEPTET_TO_CODE_POINT if c is not None) + "".join(
    EXTENSION.values()
)


def septets_to_text(septets: bytes) -> str:
    out, escaped = [], False
    for s in septets:
        if escaped:
            out.append(EXTENSION[s])
            escaped = False
        elif s == 0x1B:
            escaped = True
        else:
            code_point = SEPTET_TO_CODE_POINT[s]
            if code_point is None:
                raise ValueError(f"septet 0x{s:02x} is no character")
            out.append(chr(code_point))
    if escaped:
        raise ValueError("a part ends in the middle of an escape sequence")
    return "".join(out)


def unpack(octets: bytes, fill: int) -> bytes:
    """Septets packed least significant bit first, after `fill` bits (23.038 §6.1.2.1)."""
    bits = int.from_bytes(octets, "little") >> fill
    count = (len(octets) * 8 - fill) // 7
    septets = bytes((bits >> (7 * i)) & 0x7F for i in range(count))
    if (len(octets) * 8 - fill) % 7 == 0 and septets.endswith(b"\r"):
        septets = septets[:-1]  # seven spare bits, filled with CR (23.038 §6.1.2.3.1)
    return septets


def read_text(data: bytes, coding: int, packed: bool, fill: int = 0) -> str:
    if coding == UCS2:
        if len(data) % 2:
            raise ValueError("UCS-2 with an odd number of octets")
        return data.decode("utf-16-be")  # strict: a split surrogate pair fails here
    if coding == LATIN1:
        return data.decode("latin-1")
    return septets_to_text(unpack(data, fill) if packed else data)


@dataclass(frozen=True)
class Part:
    """One submit_sm as an SMSC saw it."""

    short_message: bytes
    esm_class: int
    tlvs: Mapping[int, bytes]


def reassemble(
    parts: Sequence[Part], coding: int, packed: bool
) -> tuple[str, list[tuple[int, int, int]]]:
    """The text back from the parts (in the order given), and each part's
    (reference, total, index) from its UDH or SAR TLVs."""
    texts, numbering = [], []
    for part in parts:
        data, fill = part.short_message, 0
        if TAG_PAYLOAD in part.tlvs:
            if data:
                raise ValueError("both short_message and message_payload")
            data = part.tlvs[TAG_PAYLOAD]
        if part.esm_class & UDHI:
            udhl, ie, ie_len = data[0], data[1], data[2]
            if udhl != ie_len + 2:
                raise ValueError(f"a UDH of {udhl} octets with one element of {ie_len}")
            if ie == 0x00:
                numbering.append((data[3], data[4], data[5]))
            elif ie == 0x08:
                numbering.append((data[3] << 8 | data[4], data[5], data[6]))
            else:
                raise ValueError(f"unexpected UDH element 0x{ie:02x}")
            header = udhl + 1
            fill = (7 - header * 8 % 7) % 7
            data = data[header:]
        elif TAG_SAR_REF in part.tlvs:
            numbering.append(
                (
                    int.from_bytes(part.tlvs[TAG_SAR_REF], "big"),
                    part.tlvs[TAG_SAR_TOTAL][0],
                    part.tlvs[TAG_SAR_SEQ][0],
                )
            )
        texts.append(read_text(data, coding, packed, fill))
    return "".join(texts), numbering
