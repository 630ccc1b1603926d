"""What every command shares: settings from flags and environment, one-line errors."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from batgate.config import Settings, load_settings
from batgate.domain.records import Account
from batgate.store.manager import Store

T = TypeVar("T")

err = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="BATGATE_DATABASE_URL",
        help="Database URL (default sqlite:///./batgate.db).",
        show_default=False,
    ),
]


ConfigFile = Annotated[
    str | None,
    typer.Option(
        "--config",
        envvar="BATGATE_CONFIG",
        help="A TOML settings file (connectors, routes, rates, …; see docs/configuration.md).",
        show_default=False,
    ),
]


def use_config(path: str | None) -> None:
    """Read settings from `path` (every command reads them through load_settings)."""
    if path is not None:
        os.environ["BATGATE_CONFIG"] = path


def emit(payload: dict[str, object]) -> None:
    """One JSON object on stdout, one line: what scripts read."""
    typer.echo(orjson.dumps(payload).decode())


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr (never wrapped, never read as markup), then exit with `code`."""
    err.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)
    raise typer.Exit(code)


def settings_for(database_url: str | None, **overrides: object) -> Settings:
    try:
        return load_settings(database_url=database_url, **overrides)
    except ValueError as exc:
        fail(f"bad configuration: {exc}")


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    store = Store.connect(
        settings.database_url, settings.database_pool_size, settings.database_max_overflow
    )
    try:
        await store.upgrade()
        yield store
    finally:
        await store.close()


async def account_named(store: Store, username: str) -> Account:
    """The account of that username, or a one-line error naming it."""
    account = await store.account_by_username(username)
    if account is None:
        fail(f"no account named {username!r}")
    return account


def with_store(settings: Settings, action: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store (migrated), run `action` on it, close it: one CLI command's work."""

    async def main() -> T:
        async with open_store(settings) as store:
            return await action(store)

    return run(main)


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(_guarded(main))


async def _guarded(main: Callable[[], Awaitable[T]]) -> T:
    try:
        return await main()
    except (OSError, SQLAlchemyError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(f"database error: {detail}")
