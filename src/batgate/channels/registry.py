"""The connectors by name: one explicit dict. Config picks one per channel."""

from __future__ import annotations

from collections.abc import Callable

from batgate.channels.base import Connector
from batgate.channels.simulator import Simulator
from batgate.config import Settings
from batgate.domain.messages import Channel

CONNECTORS: dict[str, Callable[[Settings], Connector]] = {
    "simulator": lambda settings: Simulator(settings.sandbox),
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
