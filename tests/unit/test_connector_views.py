"""A connector as `batgate connectors` shows it: the operator's switch, and the sum of
what each running process reported."""

from __future__ import annotations

import pytest

from batgate.domain.connectors import views
from batgate.domain.records import ConnectorReport


def report(state: str, worker: str, **more: object) -> ConnectorReport:
    values: dict[str, object] = {
        "links": None,
        "in_flight": 0,
        "sent_minute": 0,
        "errors_minute": 0,
        "last_error": None,
        "last_error_at": None,
    } | more
    return ConnectorReport("a", state, worker=worker, **values)  # type: ignore[arg-type]


# (the processes' states, drained by the operator, the state shown)
STATES = [
    ([], False, "no engine"),
    ([], True, "drained"),
    (["up", "down"], False, "up"),
    (["down", "circuit-open"], False, "circuit-open"),
    (["down", "down"], False, "down"),
    (["up", "up"], True, "drained"),
    (["drained", "drained"], False, "up"),  # enabled since: theirs again within seconds
]


@pytest.mark.parametrize(("states", "drained", "shown"), STATES)
def test_the_state_shown(states: list[str], drained: bool, shown: str) -> None:
    reports = [report(s, f"w{n}") for n, s in enumerate(states)]
    switches = {"a": (drained, 1.0)} if drained else {}
    (view,) = views(["a"], reports, switches)
    assert (view.state, view.processes, view.drained) == (shown, len(states), drained)


def test_the_processes_figures_add_up_and_the_latest_error_wins() -> None:
    reports = [
        report(
            "up",
            "w1",
            links=2,
            in_flight=3,
            sent_minute=60,
            errors_minute=1,
            last_error="throttled",
            last_error_at=100.0,
        ),
        report(
            "down",
            "w2",
            links=0,
            in_flight=0,
            sent_minute=5,
            errors_minute=4,
            last_error="not bound",
            last_error_at=200.0,
        ),
    ]
    (view,) = views(["a"], reports, {})
    assert (view.links, view.in_flight, view.sent_minute, view.errors_minute) == (2, 3, 65, 5)
    assert (view.last_error, view.last_error_at) == ("not bound", 200.0)


def test_every_connector_named_anywhere_is_listed_once() -> None:
    reports = [report("up", "w1")]
    found = views(["b", "a"], reports, {"c": (True, 1.0)})
    assert [v.name for v in found] == ["a", "b", "c"]
    assert [v.state for v in found] == ["up", "no engine", "drained"]
