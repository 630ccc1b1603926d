"""SMS parts (SPEC §5): encoding choice, unit counts and segment boundaries."""

from __future__ import annotations

import random

import pytest

from batgate.domain.parts import Encoding, SmsParts, is_gsm7, sms_parts

# GSM 03.38 default alphabet as Unicode code points, written independently of the
# module (hex, per 3GPP TS 23.038 table 6.2.1) so a look-alike glyph there is caught.
# 0x09 is Ç (U+00C7) as in the 3GPP table; Unicode's GSM0338.TXT maps it to ç instead.
BASIC_CODE_POINTS = frozenset(
    [0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D]
    + [0xC5, 0xE5, 0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398]
    + [0x39E, 0xC6, 0xE6, 0xDF, 0xC9, 0x20, 0x21, 0x22, 0x23, 0xA4]
    + list(range(0x25, 0x40))  # % & ' ( ) * + , - . / 0-9 : ; < = > ?
    + [0xA1]
    + list(range(0x41, 0x5B))  # A-Z
    + [0xC4, 0xD6, 0xD1, 0xDC, 0xA7, 0xBF]
    + list(range(0x61, 0x7B))  # a-z
    + [0xE4, 0xF6, 0xF1, 0xFC, 0xE0]
)
EXTENSION_CODE_POINTS = frozenset([0x0C, 0x5E, 0x7B, 0x7D, 0x5C, 0x5B, 0x7E, 0x5D, 0x7C, 0x20AC])
GSM_CODE_POINTS = BASIC_CODE_POINTS | EXTENSION_CODE_POINTS

GSM: Encoding = "GSM-7"
UCS: Encoding = "UCS-2"
EMOJI = "\U0001f600"  # 😀, a surrogate pair in UTF-16


def digits(count: int, skip: int = 0) -> str:
    """Twilio's filler: "1234567890" repeated, ``count`` long, starting ``skip`` in."""
    return ("1234567890" * (count // 10 + 2))[skip : skip + count]


# (id, text, encoding, parts, units)
OWN_CASES: list[tuple[str, str, Encoding, int, int]] = [
    ("empty", "", GSM, 1, 0),
    ("one-char", "a", GSM, 1, 1),
    ("gsm-160", "a" * 160, GSM, 1, 160),
    ("gsm-161", "a" * 161, GSM, 2, 161),
    ("gsm-306", "a" * 306, GSM, 2, 306),
    ("gsm-307", "a" * 307, GSM, 3, 307),
    ("gsm-459", "a" * 459, GSM, 3, 459),
    ("gsm-460", "a" * 460, GSM, 4, 460),
    ("gsm-whole-basic-table", "".join(map(chr, sorted(BASIC_CODE_POINTS))), GSM, 1, 127),
    ("ext-one-part-160", "{" + "a" * 158, GSM, 1, 160),
    ("ext-two-parts-161", "€" + "a" * 159, GSM, 2, 161),
    ("ext-only-80", "[" * 80, GSM, 1, 160),
    ("ext-only-81", "]" * 81, GSM, 2, 162),
    ("form-feed-is-ext", "\f" + "a" * 159, GSM, 2, 161),
    # An escape pair cannot straddle the 153-septet boundary.
    ("ext-ends-seg-at-153", "a" * 151 + "{" + "a" * 153, GSM, 2, 306),
    ("ext-at-152-fits", "a" * 152 + "{" + "a" * 151, GSM, 2, 305),
    ("ext-at-152-moves", "a" * 152 + "{" + "a" * 152, GSM, 3, 306),
    ("ext-at-152-of-seg-2", "a" * 305 + "|" + "a" * 152, GSM, 4, 459),
    ("ext-only-153-pairs", "~" * 153, GSM, 3, 306),
    ("c-cedilla-small-not-gsm", "ç", UCS, 1, 1),
    ("ucs-70", "ж" * 70, UCS, 1, 70),
    ("ucs-71", "ж" * 71, UCS, 2, 71),
    ("ucs-134", "ж" * 134, UCS, 2, 134),
    ("ucs-135", "ж" * 135, UCS, 3, 135),
    ("ucs-one-emoji-forces", "a" * 159 + EMOJI, UCS, 3, 161),
    ("emoji-35-single", EMOJI * 35, UCS, 1, 70),
    ("emoji-36-split", EMOJI * 36, UCS, 2, 72),
    # A surrogate pair cannot straddle the 67-unit boundary.
    ("emoji-ends-seg-at-67", "a" * 65 + EMOJI + "a" * 67, UCS, 2, 134),
    ("emoji-at-66-fits", "a" * 66 + EMOJI + "a" * 65, UCS, 2, 133),
    ("emoji-at-66-moves", "a" * 66 + EMOJI + "a" * 66, UCS, 3, 134),
    ("emoji-only-67", EMOJI * 67, UCS, 3, 134),
    ("ext-chars-in-ucs-count-one", "ж" + "{" * 69, UCS, 1, 70),
    ("mix-ucs", "Привет, {name}! Код: 4821 €" + EMOJI, UCS, 1, 29),
    ("mix-gsm", "Hi {name}, total €12 [paid] ~ ok", GSM, 1, 32 + 6),  # 6 extension chars
    ("tab-not-gsm", "a\tb", UCS, 1, 3),
    ("backtick-not-gsm", "`", UCS, 1, 1),
    ("lone-surrogate", "\ud800" * 71, UCS, 2, 71),
]

# Ported from TwilioDevEd/message-segment-calculator, tests/index.test.js (commit
# 29a4bc2f), "Basic tests"; tests/segments.test.js repeats the 307-digit and 134-char
# UCS-2 cases. Twilio's messageSize is in bits: units * 7 (GSM-7) or units * 16 (UCS-2).
# Left out: smart encoding, line-break styles (character counts only), and the
# Malaysia case, whose country rule forces UCS-2 for "é" (GSM-7 under SPEC §5).
TWILIO_BASIC: list[tuple[str, str, Encoding, int, int]] = [
    ("gsm-one-segment", digits(160), GSM, 1, 1120),
    ("gsm-two-segments", digits(161), GSM, 2, 1127),
    ("gsm-three-segments", digits(307), GSM, 3, 2149),
    ("ucs-one-segment", "\U0001f61c" + digits(68, 1), UCS, 1, 1120),
    ("ucs-two-segments", "\U0001f61c" + digits(69, 1), UCS, 2, 1136),
    ("ucs-three-segments", "\U0001f61c" + digits(133, 1), UCS, 3, 2160),
    ("flag-one-segment", "\U0001f1ee\U0001f1f9" + digits(66, 1), UCS, 1, 1120),
    ("flag-two-segments", "\U0001f1ee\U0001f1f9" + digits(67, 1), UCS, 2, 1136),
    ("zwj-one-segment", "\U0001f3f3\ufe0f\u200d\U0001f308" + digits(64, 1), UCS, 1, 1120),
    ("zwj-two-segments", "\U0001f3f3\ufe0f\u200d\U0001f308" + digits(65, 1), UCS, 2, 1136),
]

# Same file, "GSM-7 Escape Characters": (escape char, 158 digits) fits, 159 does not.
# Twilio's list lacks form feed; OWN_CASES covers it.
TWILIO_ESCAPES = ["|", "^", "€", "{", "}", "[", "]", "~", "\\"]

# Same file, "One grapheme UCS-2 characters", "Special tests" (issue #18: extension
# characters cost one unit in UCS-2) and "Triple accents" (issue #17: combining marks
# are units of their own). The accents test's base letter is rendered ambiguously in
# the source; both "e" and "é" give the same counts.
TWILIO_PARTS_ONLY: list[tuple[str, str, Encoding, int]] = [
    *[(f"70x-{c}", c * 70, UCS, 1) for c in "ÁÚúçíÍóÓ"],
    *[(f"71x-{c}", c * 71, UCS, 2) for c in "ÁÚúçíÍóÓ"],
    ("issue18-one-segment", EMOJI + "]" * 68, UCS, 1),
    ("issue18-two-segments", EMOJI + "]" * 69, UCS, 2),
    ("issue17-one-segment", "e\u0301\u0301\u0301" + "a" * 66, UCS, 1),
    ("issue17-two-segments", "e\u0301\u0301\u0301" + "a" * 67, UCS, 2),
]


@pytest.mark.parametrize(
    ("text", "encoding", "parts", "units"),
    [pytest.param(*case[1:], id=case[0]) for case in OWN_CASES],
)
def test_sms_parts(text: str, encoding: Encoding, parts: int, units: int) -> None:
    assert sms_parts(text) == SmsParts(encoding, parts, units)
    assert is_gsm7(text) is (encoding == GSM)


@pytest.mark.parametrize(
    ("text", "encoding", "parts", "message_bits"),
    [pytest.param(*case[1:], id=case[0]) for case in TWILIO_BASIC],
)
def test_twilio_basic(text: str, encoding: Encoding, parts: int, message_bits: int) -> None:
    bits_per_unit = 7 if encoding == GSM else 16
    assert sms_parts(text) == SmsParts(encoding, parts, message_bits // bits_per_unit)


@pytest.mark.parametrize("escape", TWILIO_ESCAPES)
@pytest.mark.parametrize(("digit_count", "parts"), [(158, 1), (159, 2)], ids=["one", "two"])
def test_twilio_escape_chars(escape: str, digit_count: int, parts: int) -> None:
    assert sms_parts(escape + digits(digit_count)) == SmsParts(GSM, parts, digit_count + 2)


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [pytest.param(*case[1:], id=case[0]) for case in TWILIO_PARTS_ONLY],
)
def test_twilio_parts(text: str, encoding: Encoding, parts: int) -> None:
    result = sms_parts(text)
    assert (result.encoding, result.parts) == (encoding, parts)


def test_alphabet_is_exactly_gsm_03_38() -> None:
    # Every BMP code point, so an extra or a missing character cannot hide.
    for code_point in range(0x10000):
        char = chr(code_point)
        if code_point in BASIC_CODE_POINTS:
            expected = SmsParts(GSM, 1, 1)
        elif code_point in EXTENSION_CODE_POINTS:
            expected = SmsParts(GSM, 1, 2)
        else:
            expected = SmsParts(UCS, 1, 1)
        assert sms_parts(char) == expected, f"U+{code_point:04X}"
        assert is_gsm7(char) is (expected.encoding == GSM), f"U+{code_point:04X}"
    assert len(BASIC_CODE_POINTS) == 127
    assert len(EXTENSION_CODE_POINTS) == 10


def test_astral_is_two_units() -> None:
    for char in ["\U00010000", EMOJI, "\U0010ffff"]:
        assert sms_parts(char) == SmsParts(UCS, 1, 2)
        assert not is_gsm7(char)


def walk_parts(text: str) -> SmsParts:
    """Character-by-character reference: the slow, obvious way to fill segments."""
    gsm = all(ord(c) in GSM_CODE_POINTS for c in text)
    if gsm:
        widths = [2 if ord(c) in EXTENSION_CODE_POINTS else 1 for c in text]
        single, multi = 160, 153
    else:
        widths = [2 if ord(c) > 0xFFFF else 1 for c in text]
        single, multi = 70, 67
    units = sum(widths)
    parts, used = 1, 0
    if units > single:
        for width in widths:
            if used + width > multi:
                parts, used = parts + 1, 0
            used += width
    return SmsParts(GSM if gsm else UCS, parts, units)


@pytest.mark.parametrize("seed", range(4))
def test_matches_character_walk(seed: int) -> None:
    rng = random.Random(seed)
    alphabets = ["ab{", "a€", "a|" + EMOJI, "aж" + EMOJI, "ж" + EMOJI * 3, "a" + "[" * 5]
    for _ in range(500):
        alphabet = rng.choice(alphabets)
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 700)))
        assert sms_parts(text) == walk_parts(text), repr(text)
