"""An HTTP carrier's request: templates with placeholders, and their values. Pure.

A template is text with `{placeholder}`s (`{{` and `}}` for literal braces). The
configuration is checked with :func:`compile_template` and :func:`compile_json`, so
an unknown placeholder stops start-up naming its key; the connector renders the
same compiled templates for each hand-over (:class:`RequestPlan`).
"""

from __future__ import annotations

import math
import string
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from batgate.domain.messages import Step
from batgate.domain.parts import sms_parts

# Every placeholder, and what it stands for (the operator's guide lists the same).
PLACEHOLDERS: dict[str, str] = {
    "to": "the destination, E.164 with its '+'",
    "to_digits": "the destination without the '+'",
    "from": "the sender (number or alphanumeric)",
    "text": "the text",
    "coding": "0 when the text fits GSM-7, 2 when it needs UCS-2",
    "unicode": "0 when the text fits GSM-7, 1 when it needs UCS-2",
    "parts": "SMS parts the text takes",
    "message_id": "batgate's message id",
    "step": "the step of the message's chain (0: the first send)",
    "ref": "batgate's reference of this hand-over: {message_id}.{step}",
    "type": "the message type (sms, viber_promo, …)",
    "channel": "the channel (sms, viber, rcs, flashcall)",
    "ttl": "seconds the message may still be delivered in",
    "validity_minutes": "the ttl in whole minutes, rounded up",
    "callback_url": "where the carrier reports this hand-over's status (with its token)",
    "username": "the connector's username",
    "password": "the connector's password",
}
# Placeholders whose value is a number: alone in a JSON string, they become one.
NUMBERS = frozenset({"coding", "unicode", "parts", "step", "ttl", "validity_minutes"})

_FORMATTER = string.Formatter()


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template: literal text and placeholder names, in order."""

    pieces: tuple[tuple[str, str | None], ...]  # (literal, placeholder after it or None)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for _, name in self.pieces if name is not None)

    @property
    def alone(self) -> str | None:
        """The placeholder when the template is exactly one, nothing around it."""
        if len(self.pieces) == 1 and self.pieces[0][0] == "":
            return self.pieces[0][1]
        return None

    def render(self, values: Mapping[str, str], quote: bool = False) -> str:
        """The text with each placeholder's value (percent-encoded with `quote`)."""
        out: list[str] = []
        for literal, name in self.pieces:
            out.append(literal)
            if name is not None:
                value = values[name]
                out.append(urllib.parse.quote(value, safe="") if quote else value)
        return "".join(out)


def compile_template(text: str) -> Template:
    """The compiled template; ValueError naming what is wrong with it."""
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError:
        raise ValueError(
            f"{text!r}: a brace without its pair (write {{{{ or }}}} for a literal brace)"
        ) from None
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            pieces.append((literal, None))
            continue
        if spec or conversion:
            raise ValueError(f"{{{name}}}: a placeholder takes no format (':' or '!')")
        if name not in PLACEHOLDERS:
            known = ", ".join(f"{{{n}}}" for n in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}} (known: {known})")
        pieces.append((literal, name))
    return Template(tuple(pieces))


# A JSON body's template: the document, its strings compiled.
JsonTemplate: TypeAlias = (
    "Template | dict[str, JsonTemplate] | list[JsonTemplate] | int | float | bool | None"
)


class PlaceholderError(ValueError):
    """A bad template inside a JSON body, and where: the keys and indexes to it."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def compile_json(doc: Any, path: tuple[str | int, ...] = ()) -> JsonTemplate:
    """A JSON body's template; PlaceholderError saying where a string is wrong."""
    if isinstance(doc, str):
        try:
            return compile_template(doc)
        except ValueError as exc:
            raise PlaceholderError(path, str(exc)) from None
    if isinstance(doc, dict):
        return {str(k): compile_json(v, (*path, str(k))) for k, v in doc.items()}
    if isinstance(doc, list):
        return [compile_json(v, (*path, i)) for i, v in enumerate(doc)]
    if doc is None or isinstance(doc, bool | int | float):
        return doc
    raise PlaceholderError(path, f"not a JSON value: {type(doc).__name__}")


def _json_names(node: JsonTemplate) -> set[str]:
    if isinstance(node, Template):
        return set(node.names)
    if isinstance(node, dict):
        return {n for v in node.values() for n in _json_names(v)}
    if isinstance(node, list):
        return {n for v in node for n in _json_names(v)}
    return set()


def _render_json(node: JsonTemplate, values: Mapping[str, str]) -> Any:
    if isinstance(node, Template):
        alone = node.alone
        if alone in NUMBERS:
            return int(values[alone])
        return node.render(values)
    if isinstance(node, dict):
        return {k: _render_json(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_render_json(v, values) for v in node]
    return node


# -- a hand-over's values -----------------------------------------------------------------


def reference(message_id: str, step: int) -> str:
    """batgate's own reference of a hand-over: the message and the step of its chain."""
    return f"{message_id}.{step}"


def values_of(
    message_id: str,
    index: int,
    step: Step,
    callback_url: str,
    username: str,
    password: str,
) -> dict[str, str]:
    """Every placeholder's value for this hand-over."""
    text = step.text or ""
    wide = sms_parts(text).encoding == "UCS-2"
    return {
        "to": step.to,
        "to_digits": step.to.removeprefix("+"),
        "from": step.sender,
        "text": text,
        "coding": "2" if wide else "0",
        "unicode": "1" if wide else "0",
        "parts": str(step.parts),
        "message_id": message_id,
        "step": str(index),
        "ref": reference(message_id, index),
        "type": step.type.value,
        "channel": step.channel.value,
        "ttl": str(step.ttl),
        "validity_minutes": str(max(1, math.ceil(step.ttl / 60))),
        "callback_url": callback_url,
        "username": username,
        "password": password,
    }


# -- the request ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One rendered request: the URL percent-encoded already, the body as bytes."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


Pairs = tuple[tuple[str, Template], ...]


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """The request of every hand-over, compiled: render it with a hand-over's values."""

    method: str
    url: Template
    headers: Pairs
    query: Pairs
    form: Pairs | None
    json: JsonTemplate | None
    has_json: bool

    @classmethod
    def compile(
        cls,
        method: str,
        url: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        form: Mapping[str, str] | None,
        json: Any,
    ) -> RequestPlan:
        def pairs(table: Mapping[str, str]) -> Pairs:
            return tuple((k, compile_template(v)) for k, v in table.items())

        return cls(
            method,
            compile_template(url),
            pairs(headers),
            pairs(query),
            None if form is None else pairs(form),
            None if json is None else compile_json(json),
            json is not None,
        )

    @property
    def names(self) -> frozenset[str]:
        """Every placeholder the request sends."""
        found = set(self.url.names)
        for pairs in (self.headers, self.query, self.form or ()):
            for _, template in pairs:
                found |= template.names
        if self.has_json:
            found |= _json_names(self.json)
        return frozenset(found)

    def render(self, values: Mapping[str, str], dumps: Any) -> Request:
        """The request for these values (`dumps`: a JSON encoder giving bytes)."""
        url = self.url.render(values, quote=True)
        if self.query:
            url += ("&" if "?" in url else "?") + _encoded(self.query, values)
        headers = {name: t.render(values) for name, t in self.headers}
        body: bytes | None = None
        if self.form is not None:
            body = _encoded(self.form, values).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif self.has_json:
            body = dumps(_render_json(self.json, values))
            headers.setdefault("Content-Type", "application/json")
        return Request(self.method, url, headers, body)


def _encoded(pairs: Sequence[tuple[str, Template]], values: Mapping[str, str]) -> str:
    """`k=v&…`, every byte but letters, digits and `_.-~` percent-encoded (a space as
    `+`), so a value that is itself a URL (a dlr-url) arrives whole."""
    return urllib.parse.urlencode([(k, t.render(values)) for k, t in pairs])
