"""A text as SMPP parts: alphabets, packing, splitting by UDH / SAR / payload, reassembly.

Reassembly here is written independently of the module under test: the GSM 03.38
table from the standard (by septet), Python's UTF-16 and Latin-1 codecs, and the
UDH / SAR layouts read field by field.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batgate.channels.smpp.pdu import Tag
from batgate.channels.smpp.text import (
    GSM7,
    LATIN1,
    UCS2,
    UDHI,
    Encoded,
    Split,
    encode_text,
    pack_septets,
    unpack_septets,
)
from batgate.domain.parts import sms_parts

# 3GPP TS 23.038 table 6.2.1, septet 0x00 … 0x7F as code points (0x1B: the escape).
SEPTET_TO_CODE_POINT = (
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
            assert code_point is not None
            out.append(chr(code_point))
    assert not escaped, "a part ends in the middle of an escape sequence"
    return "".join(out)


def read_part(data: bytes, coding: int, packed: bool, fill: int) -> str:
    if coding == UCS2:
        assert len(data) % 2 == 0
        return data.decode("utf-16-be")  # strict: a split surrogate pair fails here
    if coding == LATIN1:
        return data.decode("latin-1")
    if packed:
        septets = unpack_septets(data, fill=fill)
        if (len(data) * 8 - fill) % 7 == 0 and septets.endswith(b"\r"):
            septets = septets[:-1]  # seven spare bits, filled with CR (23.038 §6.1.2.3.1)
        return septets_to_text(septets)
    return septets_to_text(data)


def reassemble(encoded: Encoded, packed: bool) -> tuple[str, list[tuple[int, int, int]]]:
    """The text back from the parts, and each part's (reference, total, index)."""
    texts, numbering = [], []
    for segment in encoded.segments:
        data, fill = segment.short_message, 0
        tlvs = {t.tag: t.value for t in segment.tlvs}
        if Tag.MESSAGE_PAYLOAD in tlvs:
            assert data == b""
            data = tlvs[Tag.MESSAGE_PAYLOAD]
        if segment.esm_class & UDHI:
            udhl = data[0]
            ie, ie_len = data[1], data[2]
            assert udhl == ie_len + 2
            if ie == 0x00:
                numbering.append((data[3], data[4], data[5]))
            else:
                assert ie == 0x08
                numbering.append((data[3] << 8 | data[4], data[5], data[6]))
            header = udhl + 1
            fill = (7 - header * 8 % 7) % 7
            data = data[header:]
        elif Tag.SAR_MSG_REF_NUM in tlvs:
            numbering.append(
                (
                    int.from_bytes(tlvs[Tag.SAR_MSG_REF_NUM], "big"),
                    tlvs[Tag.SAR_TOTAL_SEGMENTS][0],
                    tlvs[Tag.SAR_SEGMENT_SEQNUM][0],
                )
            )
        texts.append(read_part(data, encoded.data_coding, packed, fill))
    return "".join(texts), numbering


EMOJI = "\U0001f600"
# (id, text, alphabet, data_coding, parts with UDH/SAR, parts with a 16-bit UDH)
CASES = [
    ("gsm one part", "Order #1001 confirmed", "auto", GSM7, 1, 1),
    ("gsm 160", "a" * 160, "auto", GSM7, 1, 1),
    ("gsm 161", "a" * 161, "auto", GSM7, 2, 2),
    ("gsm 306", "b" * 306, "auto", GSM7, 2, 3),
    ("gsm 307", "c" * 307, "auto", GSM7, 3, 3),
    ("escape at a boundary", "a" * 152 + "€" + "z" * 10, "auto", GSM7, 2, 2),
    ("extension everywhere", "{[€]}" * 40, "auto", GSM7, 3, 3),
    ("ucs2 70", "я" * 70, "auto", UCS2, 1, 1),
    ("ucs2 71", "я" * 71, "auto", UCS2, 2, 2),
    ("ucs2 134", "ї" * 134, "auto", UCS2, 2, 3),
    ("surrogate at a boundary", "я" * 66 + EMOJI + "я" * 5, "auto", UCS2, 2, 2),
    ("emoji only", EMOJI * 40, "auto", UCS2, 2, 2),
    ("latin1 when asked", "Grüße aus Köln, ½ Preis", "latin1", LATIN1, 1, 1),
    ("latin1 long", "é" * 141, "latin1", LATIN1, 2, 2),
    ("latin1 falls back to ucs2", "Привіт", "latin1", UCS2, 1, 1),
    ("ucs2 when asked", "plain ascii", "ucs2", UCS2, 1, 1),
]


@pytest.mark.parametrize(
    ("split", "packed"),
    [
        ("udh", False),
        ("udh", True),
        ("udh16", False),
        ("udh16", True),
        ("sar", False),
        ("sar", True),
        ("payload", False),
        ("payload", True),
    ],
)
@pytest.mark.parametrize(
    ("text", "alphabet", "coding", "parts", "parts16"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_parts_carry_the_text_whole(
    text: str, alphabet: str, coding: int, parts: int, parts16: int, split: Split, packed: bool
) -> None:
    encoded = encode_text(text, alphabet=alphabet, split=split, packed=packed, reference=300)  # type: ignore[arg-type]
    assert encoded.data_coding == coding
    expected = {"udh": parts, "sar": parts, "udh16": parts16, "payload": 1}[split]
    assert len(encoded.segments) == expected
    back, numbering = reassemble(encoded, packed and coding == GSM7)
    assert back == text
    if expected > 1:
        ref = 300 % 256 if split == "udh" else 300
        assert numbering == [(ref, expected, i) for i in range(1, expected + 1)]
    else:
        assert numbering == []
    # What fits one SMS on the air: 140 octets (160 when GSM-7 goes unpacked over SMPP).
    room = 160 if coding == GSM7 and not packed else 140
    assert all(len(segment.short_message) <= room for segment in encoded.segments)


def test_known_packed_bytes() -> None:
    # "hellohello", the classic example of GSM 03.38 packing.
    assert pack_septets(b"hellohello") == bytes.fromhex("e8329bfd4697d9ec37")
    # Seven spare bits at the end are filled with CR, not read as '@'.
    assert pack_septets(b"1234567") == bytes.fromhex("31d98c56b3dd1a")
    assert unpack_septets(pack_septets(b"1234567"))[-1] == 0x0D


def test_udh_header_bytes() -> None:
    encoded = encode_text("a" * 200, alphabet="auto", split="udh", packed=False, reference=0x1A2)
    assert encoded.segments[0].short_message[:6] == bytes.fromhex("050003a20201")
    encoded16 = encode_text(
        "a" * 200, alphabet="auto", split="udh16", packed=False, reference=0x1A2
    )
    assert encoded16.segments[1].short_message[:7] == bytes.fromhex("06080401a20202")


def test_too_many_parts_is_refused() -> None:
    with pytest.raises(ValueError, match="255"):
        encode_text("a" * 153 * 256, alphabet="auto", split="udh", packed=False, reference=1)


_GSM_CHARS = "".join(chr(c) for c in SEPTET_TO_CODE_POINT if c is not None) + "".join(
    EXTENSION.values()
)
_texts = st.text(
    st.one_of(
        st.sampled_from(_GSM_CHARS),
        st.characters(max_codepoint=0x1FFFF, exclude_categories=("Cs",)),
    ),
    max_size=700,
)


@settings(max_examples=300)
@given(_texts, st.sampled_from(["udh", "sar"]), st.booleans())
def test_parts_sent_are_the_parts_counted(text: str, split: Split, packed: bool) -> None:
    encoded = encode_text(text, alphabet="auto", split=split, packed=packed, reference=7)
    assert len(encoded.segments) == sms_parts(text).parts
    assert reassemble(encoded, packed and encoded.data_coding == GSM7)[0] == text


@settings(max_examples=200)
@given(
    _texts,
    st.sampled_from(["udh16", "payload"]),
    st.booleans(),
    st.sampled_from(["auto", "latin1", "ucs2"]),
)
def test_any_text_survives_any_split(text: str, split: Split, packed: bool, alphabet: str) -> None:
    encoded = encode_text(text, alphabet=alphabet, split=split, packed=packed, reference=65535)  # type: ignore[arg-type]
    assert reassemble(encoded, packed and encoded.data_coding == GSM7)[0] == text
