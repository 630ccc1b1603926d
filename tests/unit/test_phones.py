"""is_valid_e164: the fast path must answer exactly like phonenumbers.parse would."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from batgate.domain.phones import PHONE_CACHE_SIZE, is_e164_form, is_valid_e164


def _reference(number: str) -> bool:
    """The slow definition: E.164 form, parses, is valid, and is its own E.164 form."""
    if not is_e164_form(number):
        return False
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) and (
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number
    )


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("+380501234567", id="ua-mobile"),
        pytest.param("+447911123456", id="gb-mobile"),
        pytest.param("+14155552671", id="us"),
        pytest.param("+390612345678", id="it-landline-leading-zero"),
        pytest.param("+4915123456789", id="de-mobile"),
        pytest.param("+80012345678", id="non-geographic-800"),
    ],
)
def test_valid_numbers(number: str) -> None:
    assert is_valid_e164(number)
    assert _reference(number)


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("", id="empty"),
        pytest.param("+", id="plus-only"),
        pytest.param("+1234567", id="seven-digits"),
        pytest.param("+1234567890123456", id="sixteen-digits"),
        pytest.param("380501234567", id="no-plus"),
        pytest.param("+38 0501234567", id="space"),
        pytest.param("+380-50-123-4567", id="dashes"),
        pytest.param("+380501234567\n", id="trailing-newline"),
        pytest.param("+\uff13\uff18\uff10501234567", id="fullwidth-digits"),
        pytest.param("+0380501234567", id="leading-zero-country-code"),
        pytest.param("+99912345678", id="unassigned-country-code"),
        pytest.param("+10000000000", id="not-in-numbering-plan"),
        pytest.param("+4407911123456", id="national-prefix-kept"),
        pytest.param("+14155552671;ext=1", id="extension"),
    ],
)
def test_invalid_numbers(number: str) -> None:
    assert not is_valid_e164(number)


def _sample_numbers() -> list[str]:
    """Example numbers of every region and type, mutated, plus random digit strings."""
    rnd = random.Random(20250123)
    numbers: set[str] = set()
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in (
            phonenumbers.PhoneNumberType.FIXED_LINE,
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.TOLL_FREE,
        ):
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            cc = str(example.country_code)
            national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[
                1 + len(cc) :
            ]
            numbers.add(f"+{cc}{national}")
            numbers.add(f"+{cc}0{national}")  # national prefix left in
            numbers.add(f"+{cc}{national[:-1]}")
            for _ in range(6):
                digits = list(national)
                digits[rnd.randrange(len(digits))] = str(rnd.randrange(10))
                numbers.add(f"+{cc}{''.join(digits)}")
    for code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for _ in range(15):
            length = rnd.randint(8, 15) - len(str(code))
            numbers.add(f"+{code}" + "".join(rnd.choice("0123456789") for _ in range(length)))
    for _ in range(2000):
        numbers.add("+" + "".join(rnd.choice("0123456789") for _ in range(rnd.randint(6, 17))))
    return sorted(numbers)


def test_agrees_with_parse_on_many_numbers() -> None:
    numbers = _sample_numbers()
    expected = {n: _reference(n) for n in numbers}
    # Uncached, so every number really goes through the fast path.
    got = {n: is_valid_e164.__wrapped__(n) for n in numbers}
    assert len(numbers) > 10_000
    assert sum(expected.values()) > 2_000  # the sample holds plenty of valid numbers
    assert [n for n in numbers if got[n] != expected[n]] == []


def test_rejects_what_parse_would_only_accept_after_rewriting() -> None:
    # parse() strips the national prefix 0 and calls the result valid; batgate stores
    # and forwards `to` as given, so it must already be canonical.
    assert phonenumbers.is_valid_number(phonenumbers.parse("+4407911123456"))
    assert not is_valid_e164("+4407911123456")


def test_cache_is_bounded() -> None:
    assert is_valid_e164.cache_info().maxsize == PHONE_CACHE_SIZE == 65_536
    assert is_valid_e164("+380501234567") is is_valid_e164("+380501234567")


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        pytest.param("+12345678", True, id="eight-digits"),
        pytest.param("+123456789012345", True, id="fifteen-digits"),
        pytest.param("+1234567", False, id="seven-digits"),
        pytest.param("+1234567890123456", False, id="sixteen-digits"),
        pytest.param("+01234567", False, id="leading-zero"),
        pytest.param("12345678", False, id="no-plus"),
    ],
)
def test_e164_form(number: str, expected: bool) -> None:
    assert is_e164_form(number) is expected
