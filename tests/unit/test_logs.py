"""Request ids and log lines (observability/requests.py, observability/logs.py)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from batgate.config import Settings
from batgate.observability import logs, requests
from batgate.observability.requests import RequestInfo


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`logs.configure` changes process-wide logging: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    access_level = logs.ACCESS.level
    uvicorn = {
        n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate)
        for n in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
    }
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logs.ACCESS.setLevel(access_level)
        logging.captureWarnings(False)
        for name, (old, propagate) in uvicorn.items():
            logging.getLogger(name).handlers[:] = old
            logging.getLogger(name).propagate = propagate


# -- request ids --------------------------------------------------------------------

GENERATED = re.compile(r"^[0-9a-f]{12}-[0-9a-f]+$")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),  # UUID
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", True),  # ULID
        ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f", True),
        ("abc+/=_.:@", True),
        ("x" * 128, True),
        ("x" * 129, False),  # too long
        ("", False),
        (None, False),
        ("has space", False),
        ('quote"d', False),
        ("line\nbreak", False),
        ("ünï", False),
        ("<script>", False),
    ],
)
def test_incoming_request_id(sent: str | None, kept: bool) -> None:
    got = requests.request_id_from(sent)
    if kept:
        assert got == sent
    else:
        assert GENERATED.match(got), got


def test_generated_ids_are_unique_and_share_the_process_prefix() -> None:
    ids = [requests.new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(GENERATED.match(i) for i in ids)
    assert len({i.split("-")[0] for i in ids}) == 1


def test_note_account_fills_in_the_current_request() -> None:
    requests.note_account(7)  # outside a request: nothing to fill in, no error
    info = RequestInfo("r-1")
    token = requests.current.set(info)
    try:
        requests.note_account(42)
    finally:
        requests.current.reset(token)
    assert info.account_id == 42
    assert requests.current.get() is None


# -- formats ---------------------------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("fmt", "tty", "json_lines"),
    [
        ("json", True, True),
        ("json", False, True),
        ("text", False, False),
        ("text", True, False),
        ("auto", False, True),  # a file, a pipe, a container's log: JSON
        ("auto", True, False),  # a person at a terminal: text
    ],
)
def test_wants_json(fmt: logs.LogFormat, tty: bool, json_lines: bool) -> None:
    stream = Tty() if tty else io.StringIO()
    assert logs.wants_json(fmt, stream) is json_lines


def emit(logger: str, fmt: logs.LogFormat, info: RequestInfo | None, **kw: object) -> str:
    stream = io.StringIO()
    logs.configure(fmt, "INFO", access_log=False, stream=stream)
    token = requests.current.set(info)
    try:
        logging.getLogger(logger).warning("disk %s is %d%% full", "/var", 93, **kw)
    finally:
        requests.current.reset(token)
    return stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_json_line_during_a_request() -> None:
    line = emit("batgate.engine", "json", RequestInfo("req-1", 5))
    record = json.loads(line)
    assert record["message"] == "disk /var is 93% full"
    assert (record["level"], record["logger"], record["request_id"]) == (
        "WARNING",
        "batgate.engine",
        "req-1",
    )
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", record["timestamp"])
    assert line.count("\n") == 1


@pytest.mark.usefixtures("restore_logging")
def test_json_line_outside_a_request_has_no_request_id() -> None:
    record = json.loads(emit("batgate", "json", None))
    assert "request_id" not in record


@pytest.mark.usefixtures("restore_logging")
def test_json_exception_stays_on_one_line() -> None:
    stream = io.StringIO()
    logs.configure("json", "INFO", access_log=False, stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("batgate").exception("it failed")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert "ValueError: boom" in record["exc_info"]


@pytest.mark.usefixtures("restore_logging")
def test_uvicorn_lines_go_through_the_same_handler() -> None:
    logging.getLogger("uvicorn.error").addHandler(logging.NullHandler())
    line = emit("uvicorn.error", "json", None, extra={"color_message": "\x1b[1mcolour\x1b[0m"})
    record = json.loads(line)
    assert record["logger"] == "uvicorn.error"
    assert "color_message" not in record
    assert logging.getLogger("uvicorn.error").handlers == []


@pytest.mark.parametrize(
    ("info", "tag"),
    [(RequestInfo("req-9"), "[req-9]"), (None, "[-]")],
)
@pytest.mark.usefixtures("restore_logging")
def test_text_line(info: RequestInfo | None, tag: str) -> None:
    line = emit("batgate.api", "text", info)
    assert line.rstrip().endswith(f"WARNING batgate.api {tag} disk /var is 93% full")


@pytest.mark.usefixtures("restore_logging")
def test_level_filters_and_access_log_has_its_own_switch() -> None:
    stream = io.StringIO()
    logs.configure("json", "WARNING", access_log=True, stream=stream)
    logging.getLogger("batgate").info("not shown")
    logs.log_access("GET", "/healthz", 200, 0.0012345, RequestInfo("r-2", 3))
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["logger"] == "batgate.access"
    assert record["message"] == "GET /healthz 200 1.234ms account=3"
    assert {k: record[k] for k in ("method", "route", "status", "duration_ms", "account_id")} == {
        "method": "GET",
        "route": "/healthz",
        "status": 200,
        "duration_ms": 1.234,
        "account_id": 3,
    }
    assert record["request_id"] == "r-2"


@pytest.mark.parametrize("access_log", [False, True])
@pytest.mark.usefixtures("restore_logging")
def test_access_log_switch(access_log: bool) -> None:
    logs.configure("json", "DEBUG", access_log=access_log, stream=io.StringIO())
    assert logs.ACCESS.isEnabledFor(logging.INFO) is access_log


# -- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "level"), [("info", "INFO"), ("Debug", "DEBUG")])
def test_log_level_setting(given: str, level: str) -> None:
    assert Settings(log_level=given).log_level == level


@pytest.mark.parametrize("values", [{"log_level": "LOUD"}, {"log_format": "xml"}])
def test_bad_log_settings(values: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Settings(**values)


def test_log_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATGATE_LOG_FORMAT", "text")
    monkeypatch.setenv("BATGATE_LOG_LEVEL", "warning")
    monkeypatch.setenv("BATGATE_ACCESS_LOG", "true")
    settings = Settings()
    assert (settings.log_format, settings.log_level, settings.access_log) == (
        "text",
        "WARNING",
        True,
    )
