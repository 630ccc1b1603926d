"""The operator's view of the connectors and their switch, for the CLI (`batgate
connectors`) and the console alike: every connector the configuration knows or a
running process reported, its state summed over the processes that reported lately,
and draining or enabling one (docs/carriers.md, "Connector state, drain and enable")."""

from __future__ import annotations

from batgate.config import Settings
from batgate.domain.connectors import ConnectorView, views
from batgate.store.manager import Store


def configured(settings: Settings) -> set[str]:
    """The connectors the configuration routes to, and every declared carrier."""
    return settings.connector_names() | set(settings.connectors)


def lately(settings: Settings, now: float) -> float:
    """Reports older than this are of processes gone (they report every few seconds)."""
    return now - max(10.0, 3 * settings.dispatcher.connector_report_seconds)


async def connector_views(store: Store, settings: Settings, now: float) -> list[ConnectorView]:
    reports = await store.connectors.reports(lately(settings, now))
    return views(configured(settings), reports, await store.connectors.switches())


async def switch_connector(
    store: Store, settings: Settings, name: str, drained: bool, now: float
) -> bool:
    """Drain or enable `name`; False when no such connector is known."""
    reported = {r.connector for r in await store.connectors.reports(lately(settings, now))}
    known = configured(settings) | reported | (await store.connectors.switches()).keys()
    if name not in known:
        return False
    await store.connectors.switch(name, drained, now)
    return True
