"""A text as SMPP parts: alphabets, packing, splitting by UDH / SAR / payload, reassembly.

Reassembly is written independently of the module under test (smpp_support: the GSM
03.38 table from the standard, Python's UTF-16 and Latin-1 codecs, the UDH / SAR
layouts read field by field).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import smpp_support
from batgate.channels.smpp.text import (
    GSM7,
    LATIN1,
    UCS2,
    Encoded,
    Split,
    encode_text,
    pack_septets,
)
from batgate.domain.parts import sms_parts
from smpp_support import GSM_CHARS, Part


def reassemble(encoded: Encoded, packed: bool) -> tuple[str, list[tuple[int, int, int]]]:
    parts = [
        Part(s.short_message, s.esm_class, {t.tag: t.value for t in s.tlvs})
        for s in encoded.segments
    ]
    return smpp_support.reassemble(parts, encoded.data_coding, packed)


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


_texts = st.text(
    st.one_of(
        st.sampled_from(GSM_CHARS),
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
