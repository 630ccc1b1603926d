"""`batgate sandbox`: the sandbox carrier as a process of its own.

Workers reach it through `sandbox.url` (`BATGATE_SANDBOX__URL`); it answers as the
in-process simulator would, with its own `sandbox.*` timing, and counts every
hand-over it gets (`GET /stats`), so repeats are visible outside the workers.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from batgate.cli.common import settings_for


def sandbox(
    host: Annotated[
        str, typer.Option(envvar="BATGATE_SANDBOX_HOST", help="Bind address.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="BATGATE_SANDBOX_PORT", help="TCP port.")] = 8025,
) -> None:
    """Run the sandbox carrier as its own process (workers use it with sandbox.url)."""
    # Imported here: every other command starts quicker without aiohttp.
    from aiohttp import web

    from batgate.channels.sandbox_http import carrier_app

    settings = settings_for(None)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("batgate.sandbox")
    timing = settings.sandbox
    log.info(
        "sandbox carrier on http://%s:%d: delivery in %g s (±%g %%), 0004 in %g s",
        host,
        port,
        timing.delivery_delay,
        timing.jitter * 100,
        timing.slow_delay,
    )
    web.run_app(carrier_app(timing), host=host, port=port, access_log=None, print=None)
