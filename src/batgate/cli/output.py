"""How the commands print: tables that fit 80 columns, money one way, counted nouns.

Tables have no borders (like `kubectl get` or `docker ps`): every column gets the
width it needs and two spaces between. Ids and statuses never wrap and are never
cut; free text (URLs, errors, channel lists) wraps inside its column instead.
"""

from __future__ import annotations

from decimal import Decimal

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Column, Table
from rich.text import Text

# The longest status word (`permanenterror`) and a message id (a UUID).
STATUS_WIDTH = 14
ID_WIDTH = 36


def table(*columns: str | Column, title: str | None = None) -> Table:
    return Table(
        *columns,
        title=title,
        title_justify="left",
        box=None,
        padding=(0, 1),
        pad_edge=False,
        header_style="bold",
    )


def id_column(header: str, width: int = ID_WIDTH) -> Column:
    """A column of ids: never cut; what else the cell holds wraps at its width."""
    return Column(header, min_width=width, max_width=width, overflow="fold")


def with_detail(ident: str, detail: str, style: str = "dim") -> RenderableType:
    """An id with a line about it underneath, indented (its wrapped lines too)."""
    if not detail:
        return Text(ident)
    return Group(Text(ident), Padding(Text(detail, style=style), (0, 0, 0, 2)))


def status_column(header: str = "status") -> Column:
    return Column(header, no_wrap=True, min_width=STATUS_WIDTH)


def number_column(header: str) -> Column:
    return Column(header, justify="right", no_wrap=True)


def text_column(header: str) -> Column:
    return Column(header, overflow="fold")


def money(amount: float | Decimal | None, currency: str | None) -> str:
    """`0.05 USD`, `0.021 USD`, `12.50 EUR`: at least two decimals, at most six (the
    store keeps micro-units), then the currency; empty when there is no amount."""
    if amount is None:
        return ""
    exact = Decimal(str(amount)).quantize(Decimal("0.000001")).normalize()
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        exact = exact.quantize(Decimal("0.01"))
    return f"{exact:f} {currency or ''}".rstrip()


def plural(count: int, word: str, words: str | None = None) -> str:
    """`1 list`, `2 lists`, `0 messages`; `words` for irregular plurals (`statuses`)."""
    return f"{count} {word if count == 1 else (words or word + 's')}"
