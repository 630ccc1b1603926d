"""Routing: which connectors may take a hand-over, in the order to try them (SPEC §9).

Pure: no I/O. Rules are tried in order and the first that matches a hand-over (its
channel, the destination's prefix, the sending account) gives the connectors; its
strategy orders them:

- `failover`: as listed; the next one only when those before it cannot take it;
- `weighted`: one drawn at random by `weights`, then the others as listed;
- `cheapest`: by each connector's own price for the destination (the longest
  prefix of its price table that matches), cheapest first; a connector without a
  price for it comes after those with one; equal prices keep the listed order.

A hand-over no rule matches goes to the channel's default connector (the earlier
`[routes] sms = "NAME"` form, `channels`, or the sandbox).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Strategy = Literal["failover", "weighted", "cheapest"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One `[[routes]]` table. Empty `channels`, `prefixes` or `accounts`: any."""

    connectors: tuple[str, ...]
    channels: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    accounts: frozenset[str] = frozenset()
    strategy: Strategy = "failover"
    weights: tuple[float, ...] = ()

    def matches(self, channel: str, to: str, account: str | None) -> bool:
        return (
            (not self.channels or channel in self.channels)
            and (not self.prefixes or to.startswith(self.prefixes))
            and (not self.accounts or account in self.accounts)
        )


@dataclass(frozen=True, slots=True)
class Route:
    """Where one hand-over may go: connectors in the order to try, and which rule
    chose them (its position among the rules, from 1; None: the channel's default)."""

    connectors: tuple[str, ...]
    rule: int | None


class PriceTable:
    """A connector's own prices by destination prefix (`[connectors.NAME.prices]`);
    the prefix "" is any destination."""

    def __init__(self, prices: Mapping[str, float]) -> None:
        # Longest prefix first: the first that matches is the most specific.
        self._prices = sorted(prices.items(), key=lambda item: -len(item[0]))

    def price(self, to: str) -> float | None:
        for prefix, price in self._prices:
            if to.startswith(prefix):
                return price
        return None


class Router:
    def __init__(
        self,
        rules: Sequence[Rule],
        defaults: Mapping[str, str],
        prices: Mapping[str, PriceTable] | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        """`defaults`: channel → connector for hand-overs no rule matches; `draw`: a
        number in [0, 1) for `weighted` (random unless a test gives its own)."""
        self._rules = tuple(rules)
        self._defaults = dict(defaults)
        self._prices = dict(prices or {})
        self._draw = draw
        self.uses_accounts = any(rule.accounts for rule in self._rules)
        self.routed = bool(self._rules)  # [[routes]] rules, not only channel defaults

    def route(self, channel: str, to: str, account: str | None = None) -> Route:
        for number, rule in enumerate(self._rules, start=1):
            if rule.matches(channel, to, account):
                return Route(self._order(rule, to), number)
        return Route((self._defaults.get(channel, "sandbox"),), None)

    def _order(self, rule: Rule, to: str) -> tuple[str, ...]:
        connectors = rule.connectors
        if rule.strategy == "weighted" and len(connectors) > 1:
            first = _drawn(rule.weights, self._draw())
            return (connectors[first], *connectors[:first], *connectors[first + 1 :])
        if rule.strategy == "cheapest":
            return tuple(sorted(connectors, key=lambda name: self._cost(name, to)))
        return connectors

    def _cost(self, connector: str, to: str) -> tuple[bool, float]:
        table = self._prices.get(connector)
        price = None if table is None else table.price(to)
        return (price is None, price or 0.0)  # unpriced last; sorted() keeps ties in order


def _drawn(weights: Sequence[float], draw: float) -> int:
    """The index `draw` (in [0, 1)) falls on when the weights share [0, 1)."""
    point = draw * sum(weights)
    for index, weight in enumerate(weights):
        point -= weight
        if point < 0:
            return index
    return max(i for i, w in enumerate(weights) if w > 0)  # draw at the very top
