"""What a new account's fields must be, for the CLI and the console alike. Pure."""

from __future__ import annotations

from collections.abc import Collection

from batgate.domain.urls import is_http_url


def account_problem(
    username: str, currency: str, webhook_url: str | None, currencies: Collection[str]
) -> str | None:
    """Why an account cannot be made with these (None: it can)."""
    if not username or len(username) > 64 or ":" in username or username == "@":
        return "the username must be 1-64 characters, without ':' and not '@'"
    if currency not in currencies:
        return f"unknown currency {currency!r}; known: {', '.join(sorted(currencies))}"
    if webhook_url is not None and not is_http_url(webhook_url):
        return f"the webhook URL must be an absolute http(s) URL, got {webhook_url!r}"
    return None


def rate_limit_problem(rate: float | None, burst: int | None) -> str | None:
    """Why an account's own rate limit cannot be this (None: it can; None rate: the
    gateway's)."""
    if rate is None:
        return None if burst is None else "a burst goes with a rate"
    if not 0 < rate <= 100_000:
        return f"the rate must be above 0 and at most 100000 requests a second, got {rate:g}"
    if burst is not None and not 1 <= burst <= 1_000_000:
        return f"the burst must be from 1 to 1000000 requests, got {burst}"
    return None
