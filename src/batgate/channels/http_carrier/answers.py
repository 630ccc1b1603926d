"""What a carrier's answer to a hand-over means. Pure.

The classes follow docs/carriers.md ("Failover, and never twice"):

| the answer | verdict |
|---|---|
| 2xx and the success condition holds (if any) | taken; its id where `answer.id` says |
| the `refused` condition holds (any status) | refused for good: undeliverable |
| 401, 403 | our credentials refused: the connector is down, messages wait |
| 429 | throttled: wait `Retry-After` (1 s), not an attempt |
| 408, 502, 503, 504 | not taken (a proxy's or the carrier's "not now"): another connector may try |
| other 5xx | it may have been taken: tried again here only |
| 2xx with the condition not holding, 3xx, other 4xx | refused for good |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from batgate.channels.http_carrier.extract import Condition, Kind, Locator, Source, parse_locator

ANSWER_KINDS: tuple[Kind, ...] = ("json", "regex", "header")
_NOT_TAKEN = frozenset({408, 502, 503, 504})
_SHOWN = 200  # characters of an answer kept in a reason


@dataclass(frozen=True, slots=True)
class Taken:
    carrier_id: str | None  # None: the answer gave none (or `answer.id` is not set)


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class NotTaken:
    reason: str
    wait: float | None  # seconds before anything may be tried here again; None: an attempt


@dataclass(frozen=True, slots=True)
class MaybeTaken:
    reason: str


@dataclass(frozen=True, slots=True)
class KeyRefused:
    reason: str


Verdict = Taken | Refused | NotTaken | MaybeTaken | KeyRefused


@dataclass(frozen=True, slots=True)
class AnswerRules:
    """The `[connectors.NAME.answer]` table, compiled."""

    success: Condition | None = None
    refused: Condition | None = None
    id: Locator | None = None

    @classmethod
    def of(
        cls,
        success: str | None = None,
        success_values: Sequence[str] = (),
        refused: str | None = None,
        refused_values: Sequence[str] = (),
        id: str | None = None,
    ) -> AnswerRules:
        return cls(
            None if success is None else Condition.of(success, success_values, ANSWER_KINDS),
            None if refused is None else Condition.of(refused, refused_values, ANSWER_KINDS),
            None if id is None else parse_locator(id, ANSWER_KINDS),
        )

    def verdict(self, status: int, headers: Mapping[str, str], body: bytes) -> Verdict:
        source = Source(body, (), {k.lower(): v for k, v in headers.items()})
        said = f"HTTP {status}{excerpt(body)}"
        if self.refused is not None and self.refused.holds(source):
            return Refused(f"refused by the carrier: {said}")
        if 200 <= status < 300:
            if self.success is None or self.success.holds(source):
                return Taken(None if self.id is None else self.id.find(source))
            return Refused(f"not accepted by the carrier: {said}")
        if status in (401, 403):
            return KeyRefused(f"the carrier refused our credentials: {said}")
        if status == 429:
            return NotTaken(f"throttled by the carrier: {said}", seconds(headers, 1.0))
        if status in _NOT_TAKEN:
            return NotTaken(f"the carrier could not take it now: {said}", seconds(headers, None))
        if status >= 500:
            return MaybeTaken(f"the carrier failed, maybe after taking it: {said}")
        return Refused(f"refused by the carrier: {said}")


def excerpt(body: bytes) -> str:
    """`: ` and the start of the body on one line, or nothing for an empty body."""
    text = " ".join(body.decode("utf-8", "replace").split())
    if not text:
        return ""
    return ": " + (text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def seconds(headers: Mapping[str, str], default: float | None) -> float | None:
    """A `Retry-After` in seconds (at least 0.1), else `default`."""
    said = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return default if said is None else max(0.1, float(said))
    except ValueError:
        return default
