"""The connectors by name: one explicit dict. Config picks one per channel."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from batgate.channels.base import Connector
from batgate.channels.sandbox_http import RemoteSandbox
from batgate.channels.simulator import Simulator
from batgate.config import Settings
from batgate.domain.messages import Channel


def sandbox(settings: Settings) -> Connector:
    """The sandbox carrier: in this process, or the `batgate sandbox` process at `sandbox.url`."""
    url = settings.sandbox.url
    if url is None:
        return Simulator(settings.sandbox)
    return RemoteSandbox(url, settings.sandbox.timeout, settings.dispatcher.concurrency)


CONNECTORS: dict[str, Callable[[Settings], Connector]] = {
    "simulator": sandbox,
}


def build_connectors(settings: Settings) -> dict[Channel, Connector]:
    """One connector per channel, as configured; instances are shared between channels."""
    built: dict[str, Connector] = {}
    chosen: dict[Channel, Connector] = {}
    for channel in Channel:
        name = settings.channels.get(channel.value, "simulator")
        if name not in CONNECTORS:
            known = ", ".join(sorted(CONNECTORS))
            raise ValueError(
                f"channel {channel.value}: unknown connector {name!r} (known: {known})"
            )
        if name not in built:
            built[name] = CONNECTORS[name](settings)
        chosen[channel] = built[name]
    return chosen


async def close_connectors(connectors: Iterable[Connector]) -> None:
    """Let go of what connectors hold (connection pools), for those that hold any."""
    for connector in {id(c): c for c in connectors}.values():
        aclose = getattr(connector, "aclose", None)
        if aclose is not None:
            await aclose()
