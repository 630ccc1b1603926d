"""What e2e test modules import by name (a conftest is not importable reliably: every
test directory has one): the final statuses, the fast server's prices, and `Trace`,
which checks the SPEC §3 invariants on every answer a test polls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FINAL = frozenset({"delivered", "undeliverable", "permanenterror"})
_RANK = {"scheduled": 0, "processing": 1, "delivered": 2, "undeliverable": 2, "permanenterror": 2}
_CHANNEL_RANK = {
    "not_used": 0,
    "scheduled": 1,
    "processing": 2,
    "delivered": 3,
    "undeliverable": 3,
    "permanenterror": 3,
}

# Prices per part the fast server is configured with, so tests can check exact money.
RATES = {"sms": 0.05, "viber": 0.03, "rcs": 0.04, "flashcall": 0.02}


@dataclass
class Trace:
    """Every status answer seen while polling one message, with seconds since polling began."""

    message_id: str
    docs: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        return self.docs[-1]

    @property
    def statuses(self) -> list[str]:
        """Distinct statuses in the order they were seen."""
        seen: list[str] = []
        for doc in self.docs:
            if not seen or seen[-1] != doc["deliverystatus"]:
                seen.append(doc["deliverystatus"])
        return seen

    def first_seen(self, status: str) -> float | None:
        for doc, at in zip(self.docs, self.times, strict=True):
            if doc["deliverystatus"] == status:
                return at
        return None

    def assert_walk(self, final: str) -> None:
        """What was seen is part of scheduled → processing → `final`, in that order."""
        path = ["scheduled", "processing", final]
        seen = self.statuses
        assert seen[-1] == final, seen
        assert all(s in path for s in seen), seen
        assert [path.index(s) for s in seen] == sorted(path.index(s) for s in seen), seen

    def add(self, doc: dict[str, Any], at: float) -> None:
        status = doc["deliverystatus"]
        assert status in _RANK, f"unknown deliverystatus in {doc}"
        if self.docs:
            before = self.docs[-1]
            old = before["deliverystatus"]
            assert _RANK[status] >= _RANK[old], f"status went back: {old} -> {status}"
            assert old not in FINAL or old == status, f"final status changed: {old} -> {status}"
            _check_channels(before.get("extendedStatuses"), doc.get("extendedStatuses"))
        if status in FINAL:
            assert isinstance(doc.get("cost"), (int, float)), f"final status without cost: {doc}"
        else:
            assert "cost" not in doc, f"cost before the status is final: {doc}"
        self.docs.append(doc)
        self.times.append(at)


def _check_channels(old: dict[str, str] | None, new: dict[str, str] | None) -> None:
    if old is None or new is None:
        return
    assert old.keys() == new.keys(), f"extendedStatuses channels changed: {old} -> {new}"
    for channel, was in old.items():
        now = new[channel]
        assert _CHANNEL_RANK[now] >= _CHANNEL_RANK[was], f"{channel} went back: {was} -> {now}"
        assert _CHANNEL_RANK[was] < 3 or was == now, f"{channel} final changed: {was} -> {now}"
