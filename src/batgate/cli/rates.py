"""`batgate rates …`: the price table per channel and destination prefix."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer
from rich.console import Console

from batgate.cli.common import DatabaseUrl, emit, fail, settings_for, with_store
from batgate.cli.output import money, number_column, table
from batgate.domain.checks import is_digits
from batgate.domain.messages import Channel
from batgate.domain.pricing import Rate, RateTable, from_micros, to_micros
from batgate.engine.ratebook import configured_rates

app = typer.Typer(
    help="Manage rates (price of one part per channel and prefix).", no_args_is_help=True
)


@app.command("set")
def set_(
    channel: Annotated[str, typer.Argument(help="sms, viber, rcs or flashcall")],
    prefix: Annotated[str, typer.Argument(help="Destination prefix, digits ('' for all)")],
    price: Annotated[str, typer.Argument(help="Price of one part, e.g. 0.045")],
    currency: Annotated[str, typer.Option(help="Currency of the price.")] = "USD",
    database_url: DatabaseUrl = None,
) -> None:
    """Set (or replace) a rate; running workers pick it up within seconds."""
    settings = settings_for(database_url)
    if channel not in {c.value for c in Channel}:
        fail(f"unknown channel {channel!r}; use one of: sms, viber, rcs, flashcall")
    prefix = prefix.lstrip("+")
    if prefix and (not is_digits(prefix) or len(prefix) > 15):
        fail(f"the prefix must be up to 15 digits, got {prefix!r}")
    try:
        amount = Decimal(price)
    except InvalidOperation:
        fail(f"the price must be a number, got {price!r}")
    if not amount.is_finite() or amount < 0:
        fail(f"the price must be a non-negative number, got {price!r}")
    currency = currency.upper()
    if currency not in settings.fx:
        fail(f"unknown currency {currency!r}; known: {', '.join(sorted(settings.fx))}")
    rate = Rate(channel, prefix, to_micros(amount), currency)

    with_store(settings, lambda store: store.set_rate(rate))
    emit(
        {
            "channel": channel,
            "prefix": prefix,
            "price": from_micros(rate.micros),
            "currency": currency,
        }
    )


@app.command("list")
def list_(
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """The rates in force: configured ones, overridden by those set here."""
    settings = settings_for(database_url)

    stored = with_store(settings, lambda store: store.list_rates())
    in_force = RateTable([*configured_rates(settings.rates), *stored])
    rows = sorted(in_force.entries(), key=lambda r: (r.channel, r.prefix))
    origin = {(r.channel, r.prefix) for r in stored}
    if json:
        for r in rows:
            emit(
                {
                    "channel": r.channel,
                    "prefix": r.prefix,
                    "price": from_micros(r.micros),
                    "currency": r.currency,
                    "source": "database" if (r.channel, r.prefix) in origin else "config",
                }
            )
        return
    out = table("channel", "prefix", number_column("price of a part"), "source")
    for r in rows:
        src = "database" if (r.channel, r.prefix) in origin else "config"
        out.add_row(r.channel, r.prefix or "(all)", money(from_micros(r.micros), r.currency), src)
    Console().print(out)
