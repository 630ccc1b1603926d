"""The sandbox carrier (SPEC §7): magic endings × channels → typed outcomes."""

from __future__ import annotations

import random

import pytest

from batgate.channels.base import Outbound
from batgate.channels.simulator import Simulator, Submission, decide
from batgate.config import SandboxSettings
from batgate.domain.messages import Channel, MessageType, Step
from batgate.domain.outcomes import Accepted, Failed
from batgate.domain.status import ChannelStatus

NOW = 5_000.0
TYPES: dict[Channel, MessageType] = {
    Channel.SMS: MessageType.SMS,
    Channel.VIBER: MessageType.VIBER_PROMO,
    Channel.RCS: MessageType.RCS,
    Channel.FLASHCALL: MessageType.FLASHCALL,
}
SETTINGS = SandboxSettings(delivery_delay=2.0, slow_delay=20.0, jitter=0.5)


def outbound(channel: Channel, to: str, attempt: int = 1) -> Outbound:
    step = Step(TYPES[channel], to, "Shop", "hi", None, 600, 1)
    return Outbound("m-1", step, attempt)


def simulator(settings: SandboxSettings = SETTINGS, seed: int = 42) -> Simulator:
    return Simulator(settings, clock=lambda: NOW, rng=random.Random(seed))


DELIVERED = ChannelStatus.DELIVERED
UNDELIVERABLE = ChannelStatus.UNDELIVERABLE

# ending -> channel -> expected: "retry" (Failed, retryable), "silent" (Accepted, no
# receipt), or (receipt status, "normal" | "slow" delay)
Expected = str | tuple[ChannelStatus, str]
ENDINGS: dict[str, dict[Channel, Expected]] = {
    "4567": {c: (DELIVERED, "normal") for c in Channel},
    "0000": {c: (DELIVERED, "normal") for c in Channel},
    "0001": {c: (UNDELIVERABLE, "normal") for c in Channel},
    "0002": {c: "retry" for c in Channel},
    "0003": {
        Channel.SMS: (DELIVERED, "normal"),
        Channel.VIBER: (UNDELIVERABLE, "normal"),
        Channel.RCS: (UNDELIVERABLE, "normal"),
        Channel.FLASHCALL: (UNDELIVERABLE, "normal"),
    },
    "0004": {c: (DELIVERED, "slow") for c in Channel},
    "0005": {c: "silent" for c in Channel},
    "0006": {c: (DELIVERED, "normal") for c in Channel},
    "1001": {c: (DELIVERED, "normal") for c in Channel},  # only the last four digits count
}


@pytest.mark.parametrize(
    ("ending", "channel", "expected"),
    [
        pytest.param(ending, channel, expected, id=f"{ending}-{channel}")
        for ending, by_channel in ENDINGS.items()
        for channel, expected in by_channel.items()
    ],
)
async def test_outcome(ending: str, channel: Channel, expected: Expected) -> None:
    to = "+38050123" + ending
    result = await simulator().send(outbound(channel, to, attempt=3))
    if expected == "retry":
        assert isinstance(result, Failed)
        assert result.retryable is True
        assert ending in result.reason
        return
    assert isinstance(result, Accepted)
    assert result.carrier_ref == "sim-m-1-3"
    if expected == "silent":
        assert result.receipt is None
        return
    status, speed = expected
    assert result.receipt is not None
    assert result.receipt.status is status
    if speed == "slow":
        assert result.receipt.at == NOW + SETTINGS.slow_delay
    else:
        spread = SETTINGS.delivery_delay * SETTINGS.jitter
        low, high = NOW + SETTINGS.delivery_delay - spread, NOW + SETTINGS.delivery_delay + spread
        assert low <= result.receipt.at <= high


@pytest.mark.parametrize("ending", ["4567", "0001", "0003"])
async def test_no_jitter_gives_exact_delay(ending: str) -> None:
    sim = simulator(SandboxSettings(delivery_delay=0.75, slow_delay=3.0, jitter=0.0))
    result = await sim.send(outbound(Channel.SMS, "+38050123" + ending))
    assert isinstance(result, Accepted) and result.receipt is not None
    assert result.receipt.at == NOW + 0.75


async def test_seeded_rng_is_deterministic() -> None:
    ats = []
    for _ in range(2):
        sim = simulator(seed=7)
        results = [await sim.send(outbound(Channel.SMS, "+380501234567")) for _ in range(5)]
        ats.append([r.receipt.at for r in results if isinstance(r, Accepted) and r.receipt])
    assert ats[0] == ats[1]
    assert len(ats[0]) == 5
    assert len(set(ats[0])) > 1  # jittered


async def test_delays_spread_over_the_jitter_range() -> None:
    sim = simulator(seed=3)
    ats = []
    for _ in range(500):
        result = await sim.send(outbound(Channel.VIBER, "+380501234567"))
        assert isinstance(result, Accepted) and result.receipt is not None
        ats.append(result.receipt.at - NOW)
    assert min(ats) >= 1.0 and max(ats) <= 3.0
    assert min(ats) < 1.25 and max(ats) > 2.75


async def test_receipt_time_follows_the_clock() -> None:
    now = [100.0]
    sim = Simulator(SETTINGS, clock=lambda: now[0], rng=random.Random(1))
    first = await sim.send(outbound(Channel.SMS, "+380501230004"))
    now[0] = 200.0
    second = await sim.send(outbound(Channel.SMS, "+380501230004"))
    assert isinstance(first, Accepted) and first.receipt is not None
    assert isinstance(second, Accepted) and second.receipt is not None
    assert (first.receipt.at, second.receipt.at) == (120.0, 220.0)


@pytest.mark.parametrize("attempt", [1, 2, 10])
async def test_carrier_ref_names_message_and_attempt(attempt: int) -> None:
    result = await simulator().send(outbound(Channel.RCS, "+380501234567", attempt))
    assert isinstance(result, Accepted)
    assert result.carrier_ref == f"sim-m-1-{attempt}"


# ending, channel, draw -> (receipt status, seconds after now) or None for no receipt
DRAWS = [
    ("4567", Channel.SMS, -1.0, (DELIVERED, 1.0)),
    ("4567", Channel.SMS, 0.0, (DELIVERED, 2.0)),
    ("4567", Channel.VIBER, 1.0, (DELIVERED, 3.0)),
    ("0001", Channel.RCS, 0.5, (UNDELIVERABLE, 2.5)),
    ("0003", Channel.FLASHCALL, -0.5, (UNDELIVERABLE, 1.5)),
    ("0003", Channel.SMS, 0.0, (DELIVERED, 2.0)),
    ("0004", Channel.SMS, 1.0, (DELIVERED, 20.0)),  # the slow delay has no jitter
    ("0005", Channel.SMS, 0.0, None),
]


@pytest.mark.parametrize(("ending", "channel", "draw", "expected"), DRAWS)
def test_decide_is_a_pure_function_of_its_inputs(
    ending: str, channel: Channel, draw: float, expected: tuple[ChannelStatus, float] | None
) -> None:
    submission = Submission("m-9", 2, channel, "+38050123" + ending)
    result = decide(submission, NOW, SETTINGS, draw)
    assert result == decide(submission, NOW, SETTINGS, draw)
    assert isinstance(result, Accepted)
    assert result.carrier_ref == "sim-m-9-2"
    if expected is None:
        assert result.receipt is None
    else:
        assert result.receipt is not None
        assert (result.receipt.status, result.receipt.at - NOW) == expected


async def test_the_simulator_answers_what_decide_does() -> None:
    """Same settings, clock and dice: the in-process connector is `decide`, nothing more."""
    draws = random.Random(5)
    sim = simulator(seed=5)
    for ending in ("4567", "0001", "0002", "0003", "0004", "0005"):
        message = outbound(Channel.VIBER, "+38050123" + ending)
        expected = decide(Submission.of(message), NOW, SETTINGS, draws.uniform(-1, 1))
        assert await sim.send(message) == expected
