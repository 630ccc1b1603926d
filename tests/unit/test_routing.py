"""Routing (SPEC §9): which rule matches a hand-over, and the order its strategy gives;
and the `[[routes]]` configuration, refused at start naming the key when it is wrong."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from batgate.config import load_settings
from batgate.domain.routing import PriceTable, Route, Router, Rule

RULES = (
    Rule(("viber_up",), channels=frozenset({"viber", "rcs"})),
    Rule(("shop_a", "shop_b"), channels=frozenset({"sms"}), accounts=frozenset({"shop"})),
    Rule(("ua_a", "ua_b"), channels=frozenset({"sms"}), prefixes=("+380", "+373")),
    Rule(("any_sms",), channels=frozenset({"sms"})),
)
DEFAULTS = {"sms": "sandbox", "viber": "sandbox", "rcs": "sandbox", "flashcall": "fc"}

# (channel, destination, account, the route)
MATCHES = [
    ("viber", "+380501234567", None, Route(("viber_up",), 1)),
    ("rcs", "+15551234567", "shop", Route(("viber_up",), 1)),
    ("sms", "+380501234567", "shop", Route(("shop_a", "shop_b"), 2)),
    ("sms", "+380501234567", "other", Route(("ua_a", "ua_b"), 3)),
    ("sms", "+37360000000", None, Route(("ua_a", "ua_b"), 3)),
    ("sms", "+15551234567", None, Route(("any_sms",), 4)),
    ("flashcall", "+380501234567", "shop", Route(("fc",), None)),
]


@pytest.mark.parametrize(("channel", "to", "account", "route"), MATCHES)
def test_the_first_rule_that_matches_wins(
    channel: str, to: str, account: str | None, route: Route
) -> None:
    assert Router(RULES, DEFAULTS).route(channel, to, account) == route


def test_no_rule_and_no_default_is_the_sandbox() -> None:
    assert Router((), {}).route("sms", "+380501234567") == Route(("sandbox",), None)


PRICES = {
    "a": PriceTable({"+380": 0.020, "+38067": 0.012, "": 0.05}),
    "b": PriceTable({"+380": 0.015}),
    "c": PriceTable({"+1": 0.001}),
}
CHEAPEST = Rule(("a", "b", "c", "unpriced"), strategy="cheapest")

# (destination, the order)
CHEAPEST_ORDERS = [
    ("+380671234567", ("a", "b", "c", "unpriced")),  # a's +38067 beats b's +380
    ("+380501234567", ("b", "a", "c", "unpriced")),
    ("+15551234567", ("c", "a", "b", "unpriced")),  # a's "" is any; b has none: after
    ("+4420000000", ("a", "b", "c", "unpriced")),  # only a has a price: then as listed
]


@pytest.mark.parametrize(("to", "order"), CHEAPEST_ORDERS)
def test_cheapest_orders_by_each_connectors_price_for_the_destination(
    to: str, order: tuple[str, ...]
) -> None:
    router = Router((CHEAPEST,), {}, PRICES)
    assert router.route("sms", to).connectors == order


def test_equal_prices_keep_the_listed_order() -> None:
    prices = {"x": PriceTable({"+380": 0.01}), "y": PriceTable({"+380": 0.01})}
    for rule in (Rule(("x", "y"), strategy="cheapest"), Rule(("y", "x"), strategy="cheapest")):
        assert Router((rule,), {}, prices).route("sms", "+380501").connectors == rule.connectors


# (the draw, the order)
DRAWS = [
    (0.0, ("a", "b", "c")),
    (0.59, ("a", "b", "c")),
    (0.6, ("b", "a", "c")),
    (0.89, ("b", "a", "c")),
    (0.9, ("c", "a", "b")),
    (0.999999, ("c", "a", "b")),
]


@pytest.mark.parametrize(("draw", "order"), DRAWS)
def test_weighted_puts_the_drawn_one_first_then_the_others_as_listed(
    draw: float, order: tuple[str, ...]
) -> None:
    rule = Rule(("a", "b", "c"), strategy="weighted", weights=(6, 3, 1))
    assert Router((rule,), {}, draw=lambda: draw).route("sms", "+1").connectors == order


def test_weighted_splits_by_the_weights() -> None:
    """10,000 draws of a seeded generator: each within ±5 % of its share."""
    import random

    rng = random.Random(17)
    rule = Rule(("a", "b"), strategy="weighted", weights=(3, 1))
    router = Router((rule,), {}, draw=rng.random)
    firsts = Counter(router.route("sms", "+1").connectors[0] for _ in range(10_000))
    assert abs(firsts["a"] / 10_000 - 0.75) < 0.05
    assert abs(firsts["b"] / 10_000 - 0.25) < 0.05


def test_a_zero_weight_is_never_drawn_first() -> None:
    rule = Rule(("a", "b", "c"), strategy="weighted", weights=(0, 1, 0))
    for draw in (0.0, 0.5, 0.999999):
        assert Router((rule,), {}, draw=lambda d=draw: d).route("sms", "+1").connectors[0] == "b"


SMPP = """
[connectors.{name}]
kind = "smpp"
host = "127.0.0.1"
port = 2775
system_id = "batgate"
"""

# (the configuration after two SMPP connectors a and b, the complaint)
BAD_ROUTES = [
    ('[[routes]]\nconnectors = ["c"]\n', r"routes\.0\.connectors: no connector named 'c'"),
    ("[[routes]]\nconnectors = []\n", r"routes\.0\.connectors"),
    (
        '[[routes]]\nconnectors = ["a", "a"]\n',
        r"routes\.0\.connectors: a connector is listed twice",
    ),
    ('[[routes]]\nconnectors = ["a"]\nchannels = ["fax"]\n', r"routes\.0\.channels\.0"),
    ('[[routes]]\nconnectors = ["a"]\nprefixes = ["380"]\n', r"routes\.0\.prefixes.*'\+' and"),
    ('[[routes]]\nconnectors = ["a"]\ncolour = "red"\n', r"routes\.0\.colour: not a known"),
    (
        '[[routes]]\nconnectors = ["a", "b"]\nstrategy = "weighted"\n',
        r"routes\.0: .*one weight per connector \(2\), got 0",
    ),
    (
        '[[routes]]\nconnectors = ["a", "b"]\nstrategy = "weighted"\nweights = [0, 0]\n',
        r"at least one is above 0",
    ),
    ('[[routes]]\nconnectors = ["a"]\nweights = [1]\n', r'weights go with strategy = "weighted"'),
    (
        '[[routes]]\nconnectors = ["a", "b"]\nstrategy = "cheapest"\n',
        r'routes\.0\.strategy: "cheapest" needs prices',
    ),
    ('[routes]\nsms = "c"\n', r"routes\.sms: no connector named 'c'"),
    ('[connectors.a.prices]\n"380" = 0.01\n', r"connectors\.a\.prices"),
]


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "batgate.toml"
    path.write_text(text)
    monkeypatch.setenv("BATGATE_CONFIG", str(path))


@pytest.mark.parametrize(("extra", "complaint"), BAD_ROUTES)
def test_bad_routes_are_refused_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, complaint: str
) -> None:
    base = SMPP.format(name="a") + SMPP.format(name="b")
    if extra.startswith("[connectors.a.prices]"):
        base = SMPP.format(name="a")  # the prices table goes right after its connector
    write_config(tmp_path, monkeypatch, base + extra)
    with pytest.raises(ValueError, match=complaint):
        load_settings()


def test_both_forms_of_routes_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = """
[[routes]]
channels = ["sms"]
prefixes = ["+380"]
accounts = ["shop"]
connectors = ["a", "b"]
strategy = "weighted"
weights = [3, 1]

[[routes]]
channels = ["sms"]
connectors = ["b", "sandbox"]
"""
    write_config(tmp_path, monkeypatch, SMPP.format(name="a") + SMPP.format(name="b") + rules)
    settings = load_settings()
    assert [r.connectors for r in settings.route_rules()] == [["a", "b"], ["b", "sandbox"]]
    assert settings.connector_for("sms") == "sandbox"
    write_config(tmp_path, monkeypatch, SMPP.format(name="a") + '[routes]\nsms = "a"\n')
    settings = load_settings()
    assert settings.route_rules() == []
    assert settings.connector_for("sms") == "a"
