"""The connectors by kind: one explicit dict; and the routes over them.

The sandbox serves every channel nobody routed elsewhere; a carrier's connector is
declared as a `[connectors.NAME]` table and routed with `[[routes]]` rules or the
earlier `[routes]` table (SPEC §9, docs/carriers.md, docs/smpp.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from batgate.channels.base import CallbackReader, CarrierDesk, Connector
from batgate.channels.http_carrier.callbacks import HttpCallbacks
from batgate.channels.http_carrier.connector import HttpConnector
from batgate.channels.http_carrier.tokens import default_base
from batgate.channels.sandbox_http import RemoteSandbox
from batgate.channels.simulator import Simulator
from batgate.channels.smpp.connector import SmppConnector
from batgate.channels.smsbat.callbacks import SmsbatWebhooks
from batgate.channels.smsbat.connector import SmsbatConnector
from batgate.config import (
    SANDBOX_NAMES,
    HttpCarrierSettings,
    Settings,
    SmppSettings,
    SmsbatSettings,
)

_T = TypeVar("_T")


def sandbox(settings: Settings, name: str, desk: CarrierDesk) -> Connector:
    """The sandbox carrier: in this process, or the `batgate sandbox` process at `sandbox.url`."""
    url = settings.sandbox.url
    if url is None:
        return Simulator(settings.sandbox)
    return RemoteSandbox(url, settings.sandbox.timeout, settings.dispatcher.concurrency)


def smpp(settings: Settings, name: str, desk: CarrierDesk) -> Connector:
    """A carrier's SMSC over SMPP 3.4, as its `[connectors.NAME]` table says."""
    return SmppConnector(name, _table(settings, name, SmppSettings), desk)


def smsbat(settings: Settings, name: str, desk: CarrierDesk) -> Connector:
    """An SMSBAT-compatible API upstream (SMSBAT itself, or another batgate)."""
    return SmsbatConnector(name, _table(settings, name, SmsbatSettings), desk)


def http_carrier(settings: Settings, name: str, desk: CarrierDesk) -> Connector:
    """A carrier with a plain HTTP interface (a preset's, or templates written out).
    Its `{callback_url}` starts with `callback_base`, by default this API's address."""
    table = _table(settings, name, HttpCarrierSettings)
    base = table.callback_base or default_base(settings.host, settings.port)
    return HttpConnector(name, table, base)


CONNECTORS: dict[str, Callable[[Settings, str, CarrierDesk], Connector]] = {
    "sandbox": sandbox,
    "smpp": smpp,
    "smsbat": smsbat,
    "http": http_carrier,
}


def smsbat_webhooks(settings: Settings, name: str) -> CallbackReader | None:
    """An upstream's signed webhooks, when its table has a `webhook_secret`."""
    table = _table(settings, name, SmsbatSettings)
    return SmsbatWebhooks(name, table) if table.webhook_secret else None


def http_callbacks(settings: Settings, name: str) -> CallbackReader | None:
    """An HTTP carrier's calls, when its table maps status calls (`callback`) or
    inbound messages (`inbound`)."""
    table = _table(settings, name, HttpCarrierSettings)
    takes_calls = table.callback is not None or table.inbound is not None
    return HttpCallbacks(name, table) if takes_calls else None


# The kinds whose carriers call back over HTTP (`/callbacks/{connector}`).
CALLBACK_READERS: dict[str, Callable[[Settings, str], CallbackReader | None]] = {
    "smsbat": smsbat_webhooks,
    "http": http_callbacks,
}


def build_callback_readers(settings: Settings) -> dict[str, CallbackReader]:
    """The callback reader of each declared connector that takes callbacks, by name."""
    readers: dict[str, CallbackReader] = {}
    for name, table in settings.connectors.items():
        make = CALLBACK_READERS.get(table.kind)
        reader = make(settings, name) if make is not None else None
        if reader is not None:
            readers[name] = reader
    return readers


def _table(settings: Settings, name: str, kind: type[_T]) -> _T:
    table = settings.connectors[name]
    if not isinstance(table, kind):
        raise TypeError(f"connectors.{name} is not a {kind.__name__}")
    return table


def build_connectors(settings: Settings, desk: CarrierDesk) -> dict[str, Connector]:
    """Every connector a hand-over may go to, by name ("sandbox" for the sandbox):
    each channel's default and every connector of the `[[routes]]` rules."""
    built: dict[str, Connector] = {}
    for name in sorted(settings.connector_names()):
        kind = "sandbox" if name == "sandbox" else settings.connectors[name].kind
        built[name] = CONNECTORS[kind](settings, name, desk)
    return built


def sandbox_named(name: str) -> str:
    return "sandbox" if name in SANDBOX_NAMES else name


async def start_connectors(connectors: Iterable[Connector]) -> None:
    """Open what connectors hold open (an SMSC's connections), for those that hold any."""
    for connector in _distinct(connectors):
        start = getattr(connector, "start", None)
        if start is not None:
            await start()


async def close_connectors(connectors: Iterable[Connector]) -> None:
    """Let go of what connectors hold (connection pools), for those that hold any."""
    for connector in _distinct(connectors):
        aclose = getattr(connector, "aclose", None)
        if aclose is not None:
            await aclose()


def _distinct(connectors: Iterable[Connector]) -> list[Connector]:
    return list({id(c): c for c in connectors}.values())
