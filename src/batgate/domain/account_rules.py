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
