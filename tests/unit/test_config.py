"""Settings: defaults, the TOML file named by BATGATE_CONFIG, BATGATE_* variables, flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from batgate.config import load_settings

TOML = """
port = 9001
max_messages_per_request = 50

[rate_limit]
rate = 5
burst = 7

[sandbox]
delivery_delay = 0.7

[[rates]]
channel = "sms"
prefix = "380"
price = 0.021
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BATGATE_PORT", "BATGATE_RATE_LIMIT__BURST", "BATGATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "batgate.toml"
    path.write_text(TOML)
    monkeypatch.setenv("BATGATE_CONFIG", str(path))
    return path


def test_defaults_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATGATE_CONFIG", raising=False)
    monkeypatch.delenv("BATGATE_PORT", raising=False)
    s = load_settings()
    assert (s.port, s.max_messages_per_request, s.rate_limit.rate, s.rate_limit.burst) == (
        8000,
        1000,
        100.0,
        200,
    )
    assert {r.channel for r in s.rates} == {"sms", "viber", "rcs", "flashcall"}


def test_the_file_sets_nested_values_and_replaces_lists(config_file: Path) -> None:
    s = load_settings()
    assert (s.port, s.max_messages_per_request) == (9001, 50)
    assert (s.rate_limit.rate, s.rate_limit.burst, s.sandbox.delivery_delay) == (5.0, 7, 0.7)
    assert [(r.channel, r.prefix, r.price, r.currency) for r in s.rates] == [
        ("sms", "380", 0.021, "USD")
    ]


@pytest.mark.parametrize(
    ("env", "overrides", "port", "burst"),
    [
        ({}, {}, 9001, 7),
        ({"BATGATE_PORT": "9002"}, {}, 9002, 7),
        ({"BATGATE_RATE_LIMIT__BURST": "9"}, {}, 9001, 9),
        ({"BATGATE_PORT": "9002"}, {"port": 9003}, 9003, 7),
        ({}, {"port": None}, 9001, 7),
    ],
    ids=["file", "env-over-file", "nested-env", "flag-over-env", "unset-flag-ignored"],
)
def test_precedence(
    config_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    overrides: dict[str, object],
    port: int,
    burst: int,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings(**overrides)
    assert (s.port, s.rate_limit.burst) == (port, burst)


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"BATGATE_RATES": '[{"channel": "sms", "price": 1, "currency": "XYZ"}]'}, "XYZ"),
        ({"BATGATE_DEFAULT_CURRENCY": "ABC"}, "ABC"),
        ({"BATGATE_WEBHOOKS__LEASE_SECONDS": "5"}, "lease_seconds"),
        ({"BATGATE_PORT": "eighty"}, "port"),
        (
            {"BATGATE_SANDBOX__URL": "http://127.0.0.1:8025", "BATGATE_SANDBOX__TIMEOUT": "30"},
            "dispatcher.lease_seconds",
        ),
    ],
    ids=[
        "rate-currency-without-fx",
        "default-currency-without-fx",
        "lease-shorter",
        "bad-type",
        "dispatch-lease-shorter-than-a-batch-of-sandbox-timeouts",
    ],
)
def test_bad_settings_fail_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], complaint: str
) -> None:
    monkeypatch.delenv("BATGATE_CONFIG", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=complaint):
        load_settings()


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, None),
        ({"BATGATE_SANDBOX__URL": "http://127.0.0.1:8025"}, "http://127.0.0.1:8025"),
        (
            {
                "BATGATE_SANDBOX__URL": "http://sandbox:8025",
                "BATGATE_SANDBOX__TIMEOUT": "1",
                "BATGATE_DISPATCHER__LEASE_SECONDS": "3",
                "BATGATE_DISPATCHER__BATCH_SIZE": "100",
            },
            "http://sandbox:8025",
        ),
    ],
    ids=["in-process", "default-timing", "short-lease-short-timeout"],
)
def test_sandbox_url(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str | None) -> None:
    monkeypatch.delenv("BATGATE_CONFIG", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings().sandbox.url == url
