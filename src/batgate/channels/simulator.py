"""The sandbox carrier (SPEC §7): delivers everything, except the magic number endings.

| ending | outcome                                                             |
|--------|---------------------------------------------------------------------|
| 0001   | undeliverable on every channel                                      |
| 0002   | transient failures until retries run out → permanenterror          |
| 0003   | not reachable on Viber, RCS or flash call; SMS delivers             |
| 0004   | slow: delivered after `slow_delay` (20 s)                           |
| 0005   | no receipt ever: the TTL decides (undeliverable)                    |

Receipts are announced with the acceptance (:class:`ScheduledReceipt`), so they
are stored with the message and survive restarts; the engine applies them when due.

What the carrier answers is one pure function, :func:`decide`. The in-process
:class:`Simulator` calls it, and so does the sandbox carrier run as a process of
its own (`batgate sandbox`, :mod:`batgate.channels.sandbox_http`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from batgate.channels.base import Outbound
from batgate.config import SandboxSettings
from batgate.domain.messages import Channel
from batgate.domain.outcomes import Accepted, Failed, ScheduledReceipt, SendResult
from batgate.domain.status import ChannelStatus


@dataclass(frozen=True, slots=True)
class Submission:
    """What the sandbox carrier sees of one hand-over."""

    message_id: str
    attempt: int
    channel: Channel
    to: str

    @classmethod
    def of(cls, message: Outbound) -> Submission:
        return cls(message.message_id, message.attempt, message.step.channel, message.step.to)

    @property
    def carrier_ref(self) -> str:
        return f"sim-{self.message_id}-{self.attempt}"


def decide(
    submission: Submission, now: float, settings: SandboxSettings, draw: float
) -> SendResult:
    """The sandbox's answer to `submission` at time `now`.

    `draw`, in [-1, 1], places the receipt within ±`jitter` of `delivery_delay`.
    """
    ending = submission.to[-4:]
    ref = submission.carrier_ref
    if ending == "0002":
        return Failed("sandbox: carrier temporarily unavailable (0002)", retryable=True)
    if ending == "0005":
        return Accepted(ref)
    delay = max(0.0, settings.delivery_delay * (1.0 + settings.jitter * draw))
    if ending == "0001" or (ending == "0003" and submission.channel is not Channel.SMS):
        return Accepted(ref, ScheduledReceipt(ChannelStatus.UNDELIVERABLE, now + delay))
    if ending == "0004":
        delay = settings.slow_delay
    return Accepted(ref, ScheduledReceipt(ChannelStatus.DELIVERED, now + delay))


class Simulator:
    """The sandbox carrier inside the worker: :func:`decide`, with a clock and a dice."""

    def __init__(
        self,
        settings: SandboxSettings,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()

    async def send(self, message: Outbound) -> SendResult:
        draw = self._rng.uniform(-1.0, 1.0)
        return decide(Submission.of(message), self._clock(), self._settings, draw)
