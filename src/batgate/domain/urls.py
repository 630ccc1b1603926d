"""URL checks shared by message validation and account settings."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

MAX_URL_LENGTH: Final = 2048
_BAD_URL_CHAR: Final = re.compile(r"[\s\x00-\x1f\x7f\ud800-\udfff]")


def is_http_url(value: object) -> bool:
    """An absolute http(s) URL with a host, at most 2048 characters, no spaces or controls."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_LENGTH:
        return False
    if _BAD_URL_CHAR.search(value) is not None:
        return False
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
