"""Logging: one line per record, JSON or text, each with the id of its request.

One handler on the root logger; uvicorn's loggers propagate to it, so the server's
own lines have the same shape. A filter on the handler copies the id of the
request being handled (:mod:`batgate.observability.requests`) onto every record.

The access log (`batgate.access`, one line per request) is switched by its
logger's level, so a request pays one cached level check when it is off.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from batgate.observability import requests

LogFormat = Literal["auto", "json", "text"]

ACCESS = logging.getLogger("batgate.access")

_TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class RequestIdFilter(logging.Filter):
    """Put the current request's id on the record (unless the record has one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            info = requests.current.get()
            if info is not None:
                record.request_id = info.request_id
        return True


def json_formatter() -> logging.Formatter:
    return OrjsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
        # uvicorn adds a copy of some messages with terminal colours.
        reserved_attrs=[*RESERVED_ATTRS, "color_message", "taskName"],
    )


def text_formatter() -> logging.Formatter:
    return logging.Formatter(_TEXT, defaults={"request_id": "-"})


def wants_json(log_format: LogFormat, stream: TextIO) -> bool:
    """`auto` means JSON unless the stream is a terminal (a person is reading)."""
    if log_format == "auto":
        return not stream.isatty()
    return log_format == "json"


def configure(
    log_format: LogFormat, level: str, access_log: bool, stream: TextIO | None = None
) -> None:
    """Send every log record of this process to `stream` (stderr) in `log_format`."""
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(json_formatter() if wants_json(log_format, out) else text_formatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings too, as lines of the same shape
    ACCESS.setLevel(logging.INFO if access_log else logging.WARNING)
    # Alembic names each of its plugins at start-up: noise before every first upgrade.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    for name in _UVICORN:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def log_access(
    method: str, route: str, status: int, seconds: float, info: requests.RequestInfo
) -> None:
    """One access log line; callers check `ACCESS.isEnabledFor(logging.INFO)` first."""
    ms = round(seconds * 1000, 3)
    ACCESS.info(
        "%s %s %d %.3fms account=%s",
        method,
        route,
        status,
        ms,
        info.account_id if info.account_id is not None else "-",
        extra={
            "request_id": info.request_id,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": ms,
            "account_id": info.account_id,
        },
    )
