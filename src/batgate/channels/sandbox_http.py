"""The sandbox carrier over HTTP: the carrier as a process of its own, and its connector.

`batgate sandbox` serves :func:`carrier_app`; workers with `sandbox.url` set hand
messages to it through :class:`RemoteSandbox` instead of deciding in-process. The
carrier answers exactly as the in-process simulator does (one pure function,
:func:`batgate.channels.simulator.decide`) and counts every submission, so what a
worker handed over twice can be seen from outside the worker — even one killed
with `kill -9`.

The wire, JSON both ways::

    POST /messages  {"messageId": "…", "attempt": 1, "channel": "sms", "to": "+380…"}
      200 {"accepted": true, "carrierRef": "sim-…-1",
           "receipt": {"status": "delivered", "delay": 1.7}}    (receipt null: none ever)
      200 {"accepted": false, "reason": "…", "retryable": true}
      400 {"error": "…"}                                         (a malformed submission)
    GET /stats      {"submissions", "handovers", "messages", "repeats",
                     "repeated": [{"messageId", "channel", "attempt", "count"}],
                     "submittedMoreThanOnce": {messageId: count}}
    GET /healthz    {"status": "ok", "pid": …}

A receipt's time travels as a delay from the answer, not as a clock reading, so
the carrier's and the workers' clocks need not agree. A hand-over is one message,
channel and attempt number: a retry or the next fallback step is a new hand-over,
the same one submitted again is a repeat.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from batgate.channels.base import Outbound
from batgate.channels.simulator import Submission, decide
from batgate.config import SandboxSettings
from batgate.domain.messages import Channel
from batgate.domain.outcomes import Accepted, Failed, ScheduledReceipt, SendResult
from batgate.domain.status import ChannelStatus

log = logging.getLogger(__name__)

_JSON = {"Content-Type": "application/json"}


# -- the wire ------------------------------------------------------------------


def submission_to_json(s: Submission) -> dict[str, Any]:
    return {"messageId": s.message_id, "attempt": s.attempt, "channel": s.channel.value, "to": s.to}


def submission_from_json(doc: Any) -> Submission:
    """A submission from its JSON form; ValueError, KeyError or TypeError if malformed."""
    attempt = doc["attempt"]
    if not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be a positive integer, not {attempt!r}")
    message_id, to = doc["messageId"], doc["to"]
    if not isinstance(message_id, str) or not isinstance(to, str) or not message_id:
        raise ValueError("messageId and to must be strings")
    return Submission(message_id, attempt, Channel(doc["channel"]), to)


def result_to_json(result: SendResult, now: float) -> dict[str, Any]:
    if isinstance(result, Failed):
        return {"accepted": False, "reason": result.reason, "retryable": result.retryable}
    receipt = None
    if result.receipt is not None:
        delay = max(0.0, result.receipt.at - now)
        receipt = {"status": result.receipt.status.value, "delay": delay}
    return {"accepted": True, "carrierRef": result.carrier_ref, "receipt": receipt}


def result_from_json(doc: Any, now: float) -> SendResult:
    """The carrier's answer, its receipt placed on our clock; ValueError etc. if malformed."""
    if not doc["accepted"]:
        return Failed(str(doc["reason"]), retryable=bool(doc["retryable"]))
    receipt = doc["receipt"]
    if receipt is None:
        return Accepted(str(doc["carrierRef"]))
    status = ChannelStatus(receipt["status"])
    return Accepted(str(doc["carrierRef"]), ScheduledReceipt(status, now + float(receipt["delay"])))


# -- the carrier process ---------------------------------------------------------


class Ledger:
    """Every submission the carrier got, counted per hand-over; cheap to ask at any time."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, int]] = Counter()
        self._per_message: Counter[str] = Counter()
        self._repeated: set[tuple[str, str, int]] = set()
        self._resubmitted: set[str] = set()
        self._submissions = 0

    def add(self, s: Submission) -> int:
        """Count `s`; how often this very hand-over has been submitted now."""
        key = (s.message_id, s.channel.value, s.attempt)
        self._counts[key] += 1
        self._per_message[s.message_id] += 1
        if self._per_message[s.message_id] > 1:
            self._resubmitted.add(s.message_id)
        self._submissions += 1
        count = self._counts[key]
        if count > 1:
            self._repeated.add(key)
        return count

    def stats(self) -> dict[str, Any]:
        repeated = [
            {"messageId": m, "channel": c, "attempt": a, "count": self._counts[(m, c, a)]}
            for m, c, a in sorted(self._repeated)
        ]
        return {
            "submissions": self._submissions,
            "handovers": len(self._counts),
            "messages": len(self._per_message),
            "repeats": self._submissions - len(self._counts),
            "repeated": repeated,
            "submittedMoreThanOnce": {m: self._per_message[m] for m in sorted(self._resubmitted)},
        }


def carrier_app(
    settings: SandboxSettings,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> web.Application:
    """The sandbox carrier's HTTP API (see the module docstring)."""
    ledger = Ledger()
    dice = rng or random.Random()

    async def submit(request: web.Request) -> web.Response:
        try:
            submission = submission_from_json(orjson.loads(await request.read()))
        except (ValueError, KeyError, TypeError) as exc:
            return _json({"error": f"bad submission: {exc}"}, status=400)
        if (count := ledger.add(submission)) > 1:
            log.warning(
                "hand-over of %s (%s, attempt %d) submitted again: %d times",
                submission.message_id,
                submission.channel.value,
                submission.attempt,
                count,
            )
        now = clock()
        return _json(result_to_json(decide(submission, now, settings, dice.uniform(-1, 1)), now))

    async def stats(_request: web.Request) -> web.Response:
        return _json(ledger.stats())

    async def healthz(_request: web.Request) -> web.Response:
        return _json({"status": "ok", "pid": os.getpid()})

    app = web.Application()
    app.router.add_post("/messages", submit)
    app.router.add_get("/stats", stats)
    app.router.add_get("/healthz", healthz)
    return app


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, headers=_JSON)


# -- the connector -----------------------------------------------------------------


class RemoteSandbox:
    """The connector to the sandbox carrier process: one POST per hand-over.

    Connections are pooled (at most `connections` at once). An answer that never
    comes, or a connection that fails, is a retryable failure; the carrier may have
    taken the message even so, and the retry is a new attempt (at least once).
    """

    def __init__(
        self,
        url: str,
        timeout: float,
        connections: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._submit_url = url.rstrip("/") + "/messages"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def send(self, message: Outbound) -> SendResult:
        body = orjson.dumps(submission_to_json(Submission.of(message)))
        try:
            async with self._client().post(self._submit_url, data=body, headers=_JSON) as answer:
                status, payload = answer.status, await answer.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # It may have taken the message even so: the retry may deliver it twice.
            log.warning(
                "no answer from the sandbox carrier for %s (attempt %d): %r",
                message.message_id,
                message.attempt,
                exc,
            )
            taken = not isinstance(exc, aiohttp.ClientConnectorError)  # it was sent
            return Failed(
                f"no answer from the sandbox carrier: {exc!r}", retryable=True, maybe_taken=taken
            )
        if status != 200:
            # A 4xx says our submission was wrong: trying it again would not help.
            return Failed(f"sandbox carrier answered HTTP {status}", retryable=status >= 500)
        try:
            return result_from_json(orjson.loads(payload), self._clock())
        except (ValueError, KeyError, TypeError) as exc:
            return Failed(
                f"sandbox carrier answered something unreadable: {exc!r}", True, maybe_taken=True
            )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop it belongs to.
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._connections)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session
