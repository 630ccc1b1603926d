"""A connector as the operator sees it across every process (`batgate connectors`):
the operator's switch, and the sum of what each process's engine reported lately."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from batgate.domain.records import ConnectorReport


@dataclass(frozen=True, slots=True)
class ConnectorView:
    """`state`: `drained` (by the operator), else `up` when any process sends through it,
    `circuit-open` or `down` (not bound, refused) when none can, or `no engine` when no
    running process has it (none reported lately)."""

    name: str
    state: str
    processes: int
    links: int | None
    in_flight: int
    sent_minute: int
    errors_minute: int
    last_error: str | None
    last_error_at: float | None
    drained: bool


def views(
    names: Iterable[str],
    reports: Sequence[ConnectorReport],
    switches: Mapping[str, tuple[bool, float]],
) -> list[ConnectorView]:
    """One view per connector named in the configuration, a report or a switch."""
    by_name: dict[str, list[ConnectorReport]] = {}
    for report in reports:
        by_name.setdefault(report.connector, []).append(report)
    everyone = sorted(set(names) | by_name.keys() | switches.keys())
    return [_view(n, by_name.get(n, []), switches.get(n, (False, 0.0))[0]) for n in everyone]


def _view(name: str, reports: list[ConnectorReport], drained: bool) -> ConnectorView:
    states = {r.state for r in reports}
    if drained:
        state = "drained"
    elif not reports:
        state = "no engine"
    elif "up" in states:
        state = "up"
    elif "circuit-open" in states:
        state = "circuit-open"
    elif states == {"drained"}:
        state = "up"  # the switch was enabled since they reported: it is theirs again
    else:
        state = "down"
    links = [r.links for r in reports if r.links is not None]
    errors = [r for r in reports if r.last_error_at is not None]
    last = max(errors, key=lambda r: r.last_error_at or 0.0) if errors else None
    return ConnectorView(
        name=name,
        state=state,
        processes=len(reports),
        links=sum(links) if links else None,
        in_flight=sum(r.in_flight for r in reports),
        sent_minute=sum(r.sent_minute for r in reports),
        errors_minute=sum(r.errors_minute for r in reports),
        last_error=None if last is None else last.last_error,
        last_error_at=None if last is None else last.last_error_at,
        drained=drained,
    )
