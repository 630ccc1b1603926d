"""Where a value is in a carrier's answer or call: locators. Pure.

A locator is written `kind:where`:

- `json:/messages/0/id`: a JSON pointer (RFC 6901) into a JSON body (`json:` alone
  is the whole document);
- `regex:^0: (\\S+)`: a regular expression searched in the body; the value is its
  first group, or the whole match when it has none;
- `param:type`: a query parameter, or a field of a form body (callbacks only);
- `header:X-Message-Id`: a header.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Kind = Literal["json", "regex", "param", "header"]
KINDS: tuple[Kind, ...] = ("json", "regex", "param", "header")
_KIND: dict[str, Kind] = {k: k for k in KINDS}
_MISSING = object()  # no value there
_NOT_JSON = object()  # a body that is not JSON


@dataclass
class Source:
    """What a locator looks in: a body, its parameters (a call's query, then its form
    fields) and headers (names in lower case). The body is parsed as JSON once, when a
    locator first asks."""

    body: bytes
    params: Sequence[tuple[str, str]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    _doc: Any = field(default=_MISSING, init=False, repr=False)

    @property
    def document(self) -> Any:
        """The body as JSON (None when empty); `_NOT_JSON` when it is not JSON."""
        if self._doc is _MISSING:
            try:
                self._doc = orjson.loads(self.body)
            except orjson.JSONDecodeError:
                self._doc = None if not self.body.strip() else _NOT_JSON
        return self._doc

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Locator:
    kind: Kind
    where: str
    pattern: re.Pattern[str] | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.where}"

    def find(self, source: Source) -> str | None:
        """The value there as text; None when there is none (JSON null counts as none)."""
        if self.kind == "json":
            doc = source.document
            if doc is _NOT_JSON:
                return None
            return _as_text(pointer(doc, self.where))
        if self.pattern is not None:  # regex
            match = self.pattern.search(source.text)
            if match is None:
                return None
            return match.group(1) if self.pattern.groups else match.group(0)
        if self.kind == "param":
            return next((v for k, v in source.params if k == self.where), None)
        return source.headers.get(self.where.lower())


def parse_locator(text: str, kinds: Collection[Kind] = KINDS) -> Locator:
    """The locator `text` writes; ValueError naming what is wrong."""
    name, colon, where = text.partition(":")
    kind = _KIND.get(name)
    if not colon or kind is None or kind not in kinds:
        allowed = ", ".join(f"{k}:…" for k in kinds)
        raise ValueError(f"{text!r}: a locator is one of {allowed}")
    if kind == "json":
        if where and not where.startswith("/"):
            raise ValueError(f"{text!r}: a JSON pointer starts with '/' (json:/id)")
        if re.search(r"~(?![01])", where):
            raise ValueError(f"{text!r}: in a JSON pointer '~' is written ~0 and '/' ~1")
        return Locator("json", where)
    if not where:
        raise ValueError(f"{text!r}: say what after '{kind}:'")
    if kind == "regex":
        try:
            pattern = re.compile(where, re.MULTILINE)
        except re.error as exc:
            raise ValueError(f"{text!r}: not a regular expression: {exc}") from None
        return Locator("regex", where, pattern)
    return Locator(kind, where)


def pointer(doc: Any, path: str) -> Any:
    """The value a JSON pointer points at; `_MISSING` when there is none."""
    if path == "":
        return doc
    node = doc
    for token in path[1:].split("/"):
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(key, _MISSING)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def _as_text(value: Any) -> str | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()  # 42 → "42", true → "true", {…} → its JSON


@dataclass(frozen=True, slots=True)
class Condition:
    """A locator's value is there and, when `values` are given, one of them (letter
    case ignored)."""

    locator: Locator
    values: frozenset[str] = frozenset()

    @classmethod
    def of(cls, locator: str, values: Sequence[str], kinds: Collection[Kind]) -> Condition:
        return cls(parse_locator(locator, kinds), frozenset(v.casefold() for v in values))

    def holds(self, source: Source) -> bool:
        found = self.locator.find(source)
        if found is None:
            return False
        return not self.values or found.casefold() in self.values
