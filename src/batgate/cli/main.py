"""The `batgate` command: operators' commands (serve, worker, db, accounts, rates, …)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn

from batgate import __version__, heap
from batgate.cli import (
    accounts,
    connectors,
    inbound,
    messages,
    operators,
    rates,
    sandbox,
    suppressions,
    user,
    webhooks,
)
from batgate.cli.common import (
    ConfigFile,
    DatabaseUrl,
    fail,
    open_store,
    run,
    settings_for,
    use_config,
)
from batgate.config import Settings
from batgate.observability import logs

if TYPE_CHECKING:
    from aiohttp.web import AppRunner

    from batgate.observability.readiness import Shutdown
    from batgate.store.manager import Store

app = typer.Typer(
    help="batgate: a self-hosted messaging gateway speaking the SMSBAT REST API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(accounts.app, name="accounts")
app.add_typer(rates.app, name="rates")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(messages.app, name="messages")
app.add_typer(connectors.app, name="connectors")
app.add_typer(suppressions.app, name="suppressions")
app.add_typer(operators.app, name="operators")
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command("inbound")(inbound.inbound)
app.command(rich_help_panel="Messages")(user.send)
app.command(rich_help_panel="Messages")(user.status)
app.command(rich_help_panel="Messages")(user.wait)
app.command(rich_help_panel="Messages")(user.report)
app.command(rich_help_panel="Messages")(user.cancel)
app.command(rich_help_panel="Messages")(user.inbox)
app.command()(sandbox.sandbox)


@app.callback()
def _options(config: ConfigFile = None) -> None:
    use_config(config)


def _logging(settings: Settings) -> None:
    logs.configure(settings.log_format, settings.log_level, settings.access_log)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(envvar="BATGATE_HOST", help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(envvar="BATGATE_PORT", help="TCP port.")] = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    workers: Annotated[
        bool, typer.Option("--workers/--no-workers", help="Run the delivery engine here too.")
    ] = True,
    demo: Annotated[
        bool,
        typer.Option(
            help="A 'demo' account (credentials kept beside the database) and how to try it."
        ),
    ] = False,
    new_demo_key: Annotated[
        bool,
        typer.Option(help="With --demo: new demo credentials instead of the saved ones."),
    ] = False,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="One log line per request (setting access_log; off by default).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the API (and, by default, the delivery engine) in one process."""
    from batgate.api.app import create_app
    from batgate.api.server import protocol_class

    use_config(config)
    settings = settings_for(database_url, host=host, port=port, access_log=access_log)
    _logging(settings)
    if new_demo_key and not demo:
        fail("--new-demo-key goes with --demo", 2)
    if demo:
        _print_demo(settings, renew=new_demo_key)
    from batgate.observability.readiness import Shutdown

    shutdown = Shutdown()
    app = create_app(settings, workers=workers, shutdown=shutdown)
    server = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # SIGTERM: requests under way get half the shutdown time, the engine the rest.
        timeout_graceful_shutdown=max(1, int(settings.shutdown_timeout / 2)),
        # The connection's limits, and status lookups answered as they arrive (api.server).
        http=protocol_class(settings.http, app.respond_now),
        timeout_keep_alive=int(settings.http.keep_alive),
        # batgate's own access log (observability.logs) replaces uvicorn's: it has
        # the request id and the route template; uvicorn's other lines go through
        # the same root handler (log_config=None leaves logging to us).
        access_log=False,
        log_config=None,
        log_level=settings.log_level.lower(),
        lifespan="on",
    )
    _Server(server, shutdown, settings.http.drain_seconds).run()


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app the moment a shutdown begins (/readyz: 503),
    and serving on for `drain` seconds before it stops listening (a second signal
    cuts the drain short)."""

    def __init__(self, config: uvicorn.Config, shutdown: Shutdown, drain: float) -> None:
        super().__init__(config)
        self._shutdown = shutdown
        self._drain = drain
        self._draining: tuple[int, float] | None = None  # the signal, and until when

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._shutdown.begin()
        if self._drain > 0 and self._draining is None and not self.should_exit:
            self._draining = (sig, time.monotonic() + self._drain)
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._draining is not None and not self.should_exit:
            sig, until = self._draining
            if time.monotonic() >= until:
                super().handle_exit(sig, None)
        return await super().on_tick(counter)


@app.command()
def worker(
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve /metrics, /readyz and /healthz on this port "
            "(setting metrics.worker_port; off by default).",
            show_default=False,
        ),
    ] = None,
    metrics_host: Annotated[
        str | None,
        typer.Option(
            help="Address for --metrics-port (setting metrics.worker_host, default 127.0.0.1).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run only the delivery engine (scale out next to `serve --no-workers`)."""
    from batgate.engine.runner import Engine

    use_config(config)
    exporter = {"worker_port": metrics_port, "worker_host": metrics_host}
    overrides = {k: v for k, v in exporter.items() if v is not None}
    settings = settings_for(database_url, metrics=overrides or None)
    _logging(settings)

    async def main() -> None:
        async with open_store(settings) as store:
            from batgate.observability.readiness import Shutdown

            engine = Engine(store, settings)
            shutdown = Shutdown()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()

            def begin() -> None:
                shutdown.begin()
                stop.set()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, begin)
            server = await _serve_metrics(settings, store, shutdown)
            await engine.start()
            heap.settle()
            logging.getLogger("batgate").info("worker %s running", engine.dispatcher.worker)
            try:
                await stop.wait()
                logging.getLogger("batgate").info("worker stopping")
            finally:
                await engine.stop(shutdown.remaining(settings.shutdown_timeout))
                if server is not None:
                    await server.cleanup()

    run(main)


async def _serve_metrics(settings: Settings, store: Store, shutdown: Shutdown) -> AppRunner | None:
    from batgate.observability.exporter import start_exporter

    host, port = settings.metrics.worker_host, settings.metrics.worker_port
    if port is None:
        return None
    try:
        runner = await start_exporter(
            host,
            port,
            store.gauges,
            settings.metrics.cache_seconds,
            settings.readiness_timeout,
            shutdown,
        )
    except OSError as exc:
        fail(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}")
    logging.getLogger("batgate").info("metrics on http://%s:%d/metrics", host, port)
    return runner


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Apply the schema migrations (start-up applies them too)."""
    settings = settings_for(database_url)

    async def main() -> None:
        async with open_store(settings):
            pass

    run(main)
    typer.echo("database schema is up to date")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _print_demo(settings: Settings, *, renew: bool) -> None:
    from batgate.cli import demo
    from batgate.client.core import DEFAULT_URL

    path = demo.credentials_path(settings.database_url)
    creds, made = demo.load_or_make(path, renew=renew)

    async def main() -> None:
        async with open_store(settings) as store:
            await demo.ensure_account(store, creds, settings.default_currency)

    run(main)
    base = f"http://{settings.host}:{settings.port}"
    kept = "new, saved in" if made else "the same as last time, from"
    hint = demo.path_hint()
    setup = (f"  {hint}\n" if hint else "") + (
        f"  export KEY='{creds.api_key}' PASSWORD='{creds.password}'"
    )
    if base != DEFAULT_URL:  # the CLI's and the SDK's default
        setup += f"\n  export BATGATE_URL={base}"
    typer.echo(
        f"""
batgate {__version__} — sandbox carrier, database {settings.database_url}
demo account: {creds.username}   password: {creds.password}
API key: {creds.api_key}
({kept} {path}; `serve --demo --new-demo-key` makes new ones)

In another shell, for the README's tour:
{setup}

Send a message:
  curl -s {base}/bat/messagelist -H "X-Authorization-Key: $KEY" \\
    -d '{{"messages":[{{"from":"batgate","to":"+380501234567","type":"sms","text":"Hello"}}]}}'

Then follow it (the messageId from the answer), with any of the three logins:
  curl -s {base}/bat/message/MESSAGE_ID -H "X-Authorization-Key: $KEY"
  curl -s {base}/bat/message/MESSAGE_ID -u "{creds.username}:$PASSWORD"
  curl -s {base}/bat/message/MESSAGE_ID -u "@:$KEY"

API docs: {base}/docs
"""
    )


if __name__ == "__main__":
    app()
