"""Rates per channel and destination prefix, and what a message costs (SPEC §3). Pure.

Money is kept in integer micro-units (1e-6 of a currency unit) so sums are exact;
it becomes a JSON number only when a response is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

MICROS = 1_000_000


def to_micros(amount: float | str | Decimal) -> int:
    return int((Decimal(str(amount)) * MICROS).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_micros(micros: int) -> float:
    return micros / MICROS


@dataclass(frozen=True, slots=True)
class Rate:
    channel: str
    prefix: str  # destination digits without '+'; "" matches every number
    micros: int  # price of one part
    currency: str


class RateTable:
    """Longest-prefix lookup of a channel's rate for a destination number."""

    def __init__(self, rates: Iterable[Rate]) -> None:
        self._by_channel: dict[str, dict[str, Rate]] = {}
        for rate in rates:
            self._by_channel.setdefault(rate.channel, {})[rate.prefix] = rate
        self._longest = max((len(p) for c in self._by_channel.values() for p in c), default=0)

    def lookup(self, channel: str, to: str) -> Rate | None:
        table = self._by_channel.get(channel)
        if not table:
            return None
        digits = to.lstrip("+")
        for length in range(min(len(digits), self._longest), -1, -1):
            rate = table.get(digits[:length])
            if rate is not None:
                return rate
        return None

    def entries(self) -> list[Rate]:
        return [rate for table in self._by_channel.values() for rate in table.values()]


@dataclass(frozen=True, slots=True)
class Charge:
    """The money fields of a status response, in micro-units."""

    rate: int
    rate_currency: str
    rate_amount: int
    bill_amount: int
    bill_currency: str


def charge(
    rate_micros: int,
    rate_currency: str,
    parts: int,
    bill_currency: str,
    delivered: bool,
    fx: Mapping[str, float],
) -> Charge:
    """`rateAmount = rate × parts`; billed (converted) only when delivered."""
    rate_amount = rate_micros * parts
    bill = convert(rate_amount, rate_currency, bill_currency, fx) if delivered else 0
    return Charge(rate_micros, rate_currency, rate_amount, bill, bill_currency)


def convert(micros: int, source: str, target: str, fx: Mapping[str, float]) -> int:
    """Convert through the fx table (units of each currency per 1 unit of the base)."""
    if source == target:
        return micros
    ratio = Decimal(str(fx[target])) / Decimal(str(fx[source]))
    return int((Decimal(micros) * ratio).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
