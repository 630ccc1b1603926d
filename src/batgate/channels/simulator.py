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
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from batgate.channels.base import Outbound
from batgate.config import SandboxSettings
from batgate.domain.messages import Channel
from batgate.domain.outcomes import Accepted, Failed, ScheduledReceipt, SendResult
from batgate.domain.status import ChannelStatus


class Simulator:
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
        ending = message.step.to[-4:]
        ref = f"sim-{message.message_id}-{message.attempt}"
        if ending == "0002":
            return Failed("sandbox: carrier temporarily unavailable (0002)", retryable=True)
        if ending == "0005":
            return Accepted(ref)
        if ending == "0001" or (ending == "0003" and message.step.channel is not Channel.SMS):
            return Accepted(ref, self._receipt(ChannelStatus.UNDELIVERABLE, self._delay()))
        delay = self._settings.slow_delay if ending == "0004" else self._delay()
        return Accepted(ref, self._receipt(ChannelStatus.DELIVERED, delay))

    def _delay(self) -> float:
        base = self._settings.delivery_delay
        spread = base * self._settings.jitter
        return max(0.0, base + self._rng.uniform(-spread, spread))

    def _receipt(self, status: ChannelStatus, delay: float) -> ScheduledReceipt:
        return ScheduledReceipt(status, self._clock() + delay)
