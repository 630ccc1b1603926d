"""Rates and money (SPEC §3): prefix lookup, micro-units, charging and conversion."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batgate.domain.pricing import (
    MICROS,
    Charge,
    Rate,
    RateTable,
    charge,
    convert,
    from_micros,
    to_micros,
)

FX = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "UAH": 41.5, "PLN": 3.95}

TABLE = RateTable(
    [
        Rate("sms", "", 50_000, "USD"),
        Rate("sms", "380", 40_000, "USD"),
        Rate("sms", "38050", 30_000, "USD"),
        Rate("sms", "3805012", 20_000, "EUR"),
        Rate("viber", "", 30_000, "USD"),
        Rate("rcs", "44", 70_000, "GBP"),  # no default for rcs
    ]
)

# (id, channel, to, expected prefix or None)
LOOKUPS: list[tuple[str, str, str, str | None]] = [
    ("longest-prefix", "sms", "+380501234567", "3805012"),
    ("shorter-prefix", "sms", "+380509999999", "38050"),
    ("country-prefix", "sms", "+380671234567", "380"),
    ("channel-default", "sms", "+48501234567", ""),
    ("without-plus", "sms", "380501234567", "3805012"),
    ("prefix-not-in-other-channel", "viber", "+380501234567", ""),
    ("no-default-match", "rcs", "+447700900123", "44"),
    ("no-default-no-match", "rcs", "+380501234567", None),
    ("unknown-channel", "flashcall", "+380501234567", None),
]


@pytest.mark.parametrize(
    ("channel", "to", "prefix"), [pytest.param(*c[1:], id=c[0]) for c in LOOKUPS]
)
def test_lookup(channel: str, to: str, prefix: str | None) -> None:
    rate = TABLE.lookup(channel, to)
    if prefix is None:
        assert rate is None
    else:
        assert rate is not None
        assert (rate.channel, rate.prefix) == (channel, prefix)


def test_later_rate_replaces_same_key() -> None:
    table = RateTable([Rate("sms", "", 50_000, "USD"), Rate("sms", "", 60_000, "EUR")])
    assert table.lookup("sms", "+380501234567") == Rate("sms", "", 60_000, "EUR")
    assert table.entries() == [Rate("sms", "", 60_000, "EUR")]


def test_empty_table() -> None:
    assert RateTable([]).lookup("sms", "+380501234567") is None
    assert RateTable([]).entries() == []


def test_entries_lists_every_rate() -> None:
    assert len(TABLE.entries()) == 6


@pytest.mark.parametrize(
    ("amount", "micros"),
    [
        ("0.05", 50_000),
        (0.05, 50_000),
        (Decimal("0.05"), 50_000),
        (1, 1_000_000),
        ("0", 0),
        (0.1 + 0.2, 300_000),  # float noise below a micro disappears
        ("0.0000005", 0),  # half to even
        ("0.0000015", 2),
        ("0.0000025", 2),
        ("123456.789012", 123_456_789_012),
        ("-0.01", -10_000),
    ],
)
def test_to_micros(amount: float | str | Decimal, micros: int) -> None:
    assert to_micros(amount) == micros


@pytest.mark.parametrize(
    ("micros", "amount"),
    [(50_000, 0.05), (0, 0.0), (1, 0.000001), (150_000, 0.15), (123_456_789_012, 123456.789012)],
)
def test_from_micros(micros: int, amount: float) -> None:
    assert from_micros(micros) == amount


@pytest.mark.parametrize("text", ["0.05", "0.03", "0.04", "0.02", "1.23", "0.000001", "99.99"])
def test_micros_round_trip(text: str) -> None:
    assert from_micros(to_micros(text)) == float(text)
    assert MICROS == 1_000_000


# (id, rate, currency, parts, bill currency, delivered, expected charge)
CHARGES: list[tuple[str, int, str, int, str, bool, Charge]] = [
    ("one-part", 50_000, "USD", 1, "USD", True, Charge(50_000, "USD", 50_000, 50_000, "USD")),
    ("three-parts", 50_000, "USD", 3, "USD", True, Charge(50_000, "USD", 150_000, 150_000, "USD")),
    (
        "converted",
        50_000,
        "USD",
        3,
        "EUR",
        True,
        Charge(50_000, "USD", 150_000, 138_000, "EUR"),
    ),
    (
        "undelivered-costs-nothing",
        50_000,
        "USD",
        3,
        "USD",
        False,
        Charge(50_000, "USD", 150_000, 0, "USD"),
    ),
    (
        "undelivered-converted-costs-nothing",
        50_000,
        "USD",
        2,
        "UAH",
        False,
        Charge(50_000, "USD", 100_000, 0, "UAH"),
    ),
    ("free-rate", 0, "USD", 2, "EUR", True, Charge(0, "USD", 0, 0, "EUR")),
]


@pytest.mark.parametrize(
    ("rate", "currency", "parts", "bill_currency", "delivered", "expected"),
    [pytest.param(*c[1:], id=c[0]) for c in CHARGES],
)
def test_charge(
    rate: int, currency: str, parts: int, bill_currency: str, delivered: bool, expected: Charge
) -> None:
    assert charge(rate, currency, parts, bill_currency, delivered, FX) == expected


# (micros, source, target, expected micros): exact to the micro, half to even
CONVERSIONS: list[tuple[int, str, str, int]] = [
    (1_000_000, "USD", "USD", 1_000_000),
    (1_000_000, "USD", "EUR", 920_000),
    (920_000, "EUR", "USD", 1_000_000),
    (920_000, "EUR", "GBP", 790_000),
    (790_000, "GBP", "EUR", 920_000),
    (1_000_000, "USD", "UAH", 41_500_000),
    (41_500_000, "UAH", "USD", 1_000_000),
    (395_000, "PLN", "USD", 100_000),
    (50_000, "USD", "PLN", 197_500),
    (1, "USD", "UAH", 42),  # 41.5 -> 42 (even)
    (3, "USD", "UAH", 124),  # 124.5 -> 124 (even)
    (1, "USD", "EUR", 1),  # 0.92
    (1, "UAH", "USD", 0),  # 0.024
    (0, "USD", "GBP", 0),
    (10**15, "USD", "EUR", 920 * 10**12),  # large sums stay exact
    (10**15, "EUR", "USD", 1_086_956_521_739_130),
]


@pytest.mark.parametrize(("micros", "source", "target", "expected"), CONVERSIONS)
def test_convert(micros: int, source: str, target: str, expected: int) -> None:
    result = convert(micros, source, target, FX)
    assert isinstance(result, int)
    assert result == expected


def test_convert_same_currency_needs_no_rate() -> None:
    assert convert(123, "XYZ", "XYZ", {}) == 123


def test_convert_unknown_currency_raises() -> None:
    with pytest.raises(KeyError):
        convert(123, "USD", "XYZ", FX)


@pytest.mark.parametrize(
    ("priced", "unpriced"),
    [
        (["sms", "viber", "rcs", "flashcall"], []),
        (["sms"], ["viber", "rcs", "flashcall"]),
        ([], ["sms", "viber", "rcs", "flashcall"]),
    ],
)
def test_channels_without_a_rate_are_named(priced: list[str], unpriced: list[str]) -> None:
    from batgate.engine.ratebook import unpriced_channels

    table = RateTable([Rate(c, "380", 1000, "USD") for c in priced])
    assert unpriced_channels(table) == unpriced
