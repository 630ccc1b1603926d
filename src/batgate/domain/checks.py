"""Small checks shared by message validation and the messageData checkers. Pure.

Each raises :class:`Invalid` with the SPEC error code and a message naming the field.
"""

from __future__ import annotations

import re
from typing import Any, Final

from batgate.domain.messages import ErrorCode
from batgate.domain.urls import MAX_URL_LENGTH, is_http_url

JsonObject = dict[str, Any]

DATA: Final = ErrorCode.INVALID_MESSAGE_DATA
_BAD_CHAR: Final = re.compile("[\x00\ud800-\udfff]")
_JSON_TYPES: Final = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


class Invalid(Exception):
    """The first failing rule; turned into a Rejection at the module boundary."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def as_object(value: object, path: str) -> JsonObject:
    if not isinstance(value, dict):
        raise Invalid(DATA, f"{path}: must be an object, got {json_type(value)}")
    return value


def as_array(value: object, path: str, least: int, most: int) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid(DATA, f"{path}: must be an array, got {json_type(value)}")
    if not least <= len(value) <= most:
        raise Invalid(DATA, f"{path}: has {len(value)} entries, expected {least} to {most}")
    return value


def non_blank(value: object, path: str) -> str:
    if not isinstance(value, str) or not value or value.isspace():
        raise Invalid(DATA, f"{path}: must be a non-empty string, got {show(value)}")
    return value


def positive_int(value: object, path: str) -> int:
    if type(value) is not int or value < 1:
        raise Invalid(DATA, f"{path}: must be a positive integer, got {show(value)}")
    return value


def optional_url(data: JsonObject, key: str) -> str | None:
    value = data.get(key)
    return None if value is None else url_field(value, f"messageData.{key}")


def url_field(value: object, path: str) -> str:
    """An absolute http(s) URL of at most 2048 characters, without spaces or controls."""
    if not isinstance(value, str):
        raise Invalid(DATA, f"{path}: must be a URL string, got {json_type(value)}")
    if len(value) > MAX_URL_LENGTH:
        raise Invalid(DATA, f"{path}: {len(value)} characters, more than {MAX_URL_LENGTH}")
    if not is_http_url(value):
        raise Invalid(DATA, f"{path}: {show(value)} is not an absolute http(s) URL")
    return value


def bad_char(value: str) -> str | None:
    """What makes ``value`` unstorable as text (a NUL, a surrogate), or None."""
    if value.isascii():
        position = value.find("\x00")
        return None if position < 0 else f"contains a NUL character at position {position}"
    found = _BAD_CHAR.search(value)
    if found is None:
        return None
    char, position = found.group(), found.start()
    if char == "\x00":
        return f"contains a NUL character at position {position}"
    return f"contains a lone surrogate U+{ord(char):04X} at position {position}"


def json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def show(value: object) -> str:
    """A short, printable rendering of a caller's value (repr escapes NUL, surrogates)."""
    scalar = isinstance(value, (str, int, float)) and not isinstance(value, bool)
    shown = repr(value) if scalar else json_type(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def is_digits(value: str) -> bool:
    """Only the ASCII digits 0-9: `str.isdigit` also takes `¹`, `٣` and `３`, which
    `int()` then reads as numbers or refuses (a 500 on `/bat/messagelist/%C2%B9`)."""
    return value.isascii() and value.isdigit()
