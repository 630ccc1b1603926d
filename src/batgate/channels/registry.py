"""The connectors by kind: one explicit dict; and the routes over them.

The sandbox serves every channel nobody routed elsewhere; a carrier's connector is
declared as a `[connectors.NAME]` table and routed with `[[routes]]` rules or the
earlier `[routes]` table (SPEC §9, docs/carriers.md, docs/smpp.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from batgate.channels.base import Connector, ReceiptSink
from batgate.channels.sandbox_http import RemoteSandbox
from batgate.channels.simulator import Simulator
from batgate.channels.smpp.connector import SmppConnector
from batgate.config import SANDBOX_NAMES, Settings


def sandbox(settings: Settings, name: str, receipts: ReceiptSink) -> Connector:
    """The sandbox carrier: in this process, or the `batgate sandbox` process at `sandbox.url`."""
    url = settings.sandbox.url
    if url is None:
        return Simulator(settings.sandbox)
    return RemoteSandbox(url, settings.sandbox.timeout, settings.dispatcher.concurrency)


def smpp(settings: Settings, name: str, receipts: ReceiptSink) -> Connector:
    """A carrier's SMSC over SMPP 3.4, as its `[connectors.NAME]` table says."""
    return SmppConnector(name, settings.connectors[name], receipts)


CONNECTORS: dict[str, Callable[[Settings, str, ReceiptSink], Connector]] = {
    "sandbox": sandbox,
    "smpp": smpp,
}


def build_connectors(settings: Settings, receipts: ReceiptSink) -> dict[str, Connector]:
    """Every connector a hand-over may go to, by name ("sandbox" for the sandbox):
    each channel's default and every connector of the `[[routes]]` rules."""
    built: dict[str, Connector] = {}
    for name in sorted(settings.connector_names()):
        kind = "sandbox" if name == "sandbox" else settings.connectors[name].kind
        built[name] = CONNECTORS[kind](settings, name, receipts)
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
