"""The connector to a carrier with a plain HTTP interface: one request per hand-over.

The request is the connector's template (channels.http_carrier.template) rendered
with the hand-over's values; what the answer means is channels.http_carrier.answers.
What never reached the carrier may go to another connector; what may have reached it
stays here (docs/carriers.md, "Failover, and never twice"):

| what happened | result |
|---|---|
| no connection (refused, no route, connecting timed out) | not taken; wait 1 s, no attempt |
| the request went out, its answer was lost (timeout, cut) | maybe taken: tried here only |
| an answer | as `answers.AnswerRules.verdict` says |

**Receipts.** With a `{callback_url}` in the request, the hand-over is named by
batgate's reference (`{message_id}.{step}`), which the carrier's call brings back
in the URL; else by the carrier's id from its answer (`answer.id`). Without a
`callback` table no receipt ever comes: a message the carrier took counts as
delivered, as an SMPP carrier's does without `registered_delivery`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import aiohttp
import orjson
from yarl import URL

from batgate.channels.base import Outbound
from batgate.channels.http_carrier import answers, template, tokens
from batgate.config import HttpCarrierSettings
from batgate.domain.outcomes import (
    Accepted,
    CarrierId,
    Failed,
    Handover,
    ScheduledReceipt,
    SendResult,
)
from batgate.domain.status import ChannelStatus

log = logging.getLogger(__name__)

_UNREACHABLE_WAIT = 1.0  # seconds, before a carrier that could not be reached is tried again
_ID_LENGTH = 64  # what the store keeps of a carrier's id
_MOST = 1 << 20  # bytes of an answer read at most (what counts is at its start)


class HttpConnector:
    def __init__(
        self,
        name: str,
        settings: HttpCarrierSettings,
        callback_base: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._settings = settings
        self._clock = clock
        self._plan = settings.request
        self._rules = answers.AnswerRules.of(**settings.answer.model_dump())
        self._base = callback_base
        self._by_ref = "callback_url" in self._plan.names
        self._receipts = settings.callback is not None
        key = tokens.secret(name, settings.callback_token, settings.credentials)
        self._key = key if key is not None else b""
        self._auth = (
            aiohttp.BasicAuth(settings.username, settings.password) if settings.basic_auth else None
        )
        self._session: aiohttp.ClientSession | None = None
        # Our credentials refused (401/403): why, and when a hand-over may try again.
        self.down_reason: str | None = None
        self.down_summary = "refused by the carrier"
        self._retry_refused_at = 0.0

    @property
    def bound_links(self) -> int | None:
        """0 while the carrier refuses our credentials (the connector is down); else
        None: an HTTP carrier has no links to count."""
        return 0 if self.down_reason is not None else None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, message: Outbound) -> SendResult:
        if self.down_reason is not None and self._clock() < self._retry_refused_at:
            wait = self._retry_refused_at - self._clock()
            return Failed(self.down_reason, retryable=True, retry_after=max(0.1, wait))
        if message.step.text is None and "text" in self._plan.names:
            return Failed(f"{self.name}: the step has no text to send", retryable=False)
        ref = template.reference(message.message_id, message.index)
        s = self._settings
        callback = (
            tokens.callback_url(self._base, self.name, ref, self._key) if self._by_ref else ""
        )
        values = template.values_of(
            message.message_id, message.index, message.step, callback, s.username, s.password
        )
        request = self._plan.render(values, orjson.dumps)
        outcome = await self._exchange(request)
        if isinstance(outcome, Failed):
            return outcome
        return self._result(self._rules.verdict(*outcome), ref)

    async def _exchange(
        self, request: template.Request
    ) -> tuple[int, dict[str, str], bytes] | Failed:
        """The carrier's answer: status, headers, body; or why there is none."""
        try:
            async with self._client().request(
                request.method,
                URL(request.url, encoded=True),
                data=request.body,
                headers=request.headers,
                auth=self._auth,
                allow_redirects=False,
            ) as answer:
                return answer.status, dict(answer.headers), await _body(answer)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Nothing was sent: another connector may take it, and this one waits.
            why = f"{self.name}: cannot reach the carrier: {_why(exc)}"
            return Failed(why, retryable=True, retry_after=_UNREACHABLE_WAIT)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            why = f"{self.name}: no answer from the carrier ({_why(exc)}); it may have taken it"
            return Failed(why, retryable=True, maybe_taken=True)

    def _result(self, verdict: answers.Verdict, ref: str) -> SendResult:
        if isinstance(verdict, answers.KeyRefused):
            return self._refused(verdict.reason)
        self._not_refused()
        if isinstance(verdict, answers.Taken):
            return self._taken(verdict.carrier_id, ref)
        reason = f"{self.name}: {verdict.reason}"
        if isinstance(verdict, answers.Refused):
            return Failed(reason, retryable=False)
        if isinstance(verdict, answers.NotTaken):
            return Failed(reason, retryable=True, retry_after=verdict.wait)
        return Failed(reason, retryable=True, maybe_taken=True)

    def _taken(self, carrier_id: str | None, ref: str) -> Accepted:
        carrier_ref = (carrier_id or ref)[:_ID_LENGTH]
        if not self._receipts:
            return Accepted(carrier_ref, ScheduledReceipt(ChannelStatus.DELIVERED, self._clock()))
        if not self._by_ref and carrier_id is None:
            log.warning(
                "connector %s: the carrier's answer gave no id where answer.id says; "
                "no callback can be matched to %s, which ends at its TTL",
                self.name,
                ref,
            )
        part = ref if self._by_ref or carrier_id is None else carrier_ref
        return Accepted(carrier_ref, handover=Handover(self.name, (CarrierId(part),)))

    def _refused(self, reason: str) -> Failed:
        why = f"{self.name}: {reason}"
        if self.down_reason is None:
            log.error("%s; the connector is down until the carrier accepts them", why)
        self.down_reason = why
        self._retry_refused_at = self._clock() + self._settings.circuit_cooldown
        return Failed(why, retryable=True, retry_after=self._settings.circuit_cooldown)

    def _not_refused(self) -> None:
        if self.down_reason is not None:
            log.warning("%s: the carrier accepts our credentials again", self.name)
            self.down_reason = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop it belongs to.
        if self._session is None:
            timeout = self._settings.timeout
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._settings.connections),
                # Half the time to connect (a wait for a free connection included):
                # a connect that times out took nothing, while a request that does
                # may have been taken.
                timeout=aiohttp.ClientTimeout(total=timeout, connect=timeout / 2),
            )
        return self._session


async def _body(answer: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    async for chunk in answer.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) >= _MOST:
            break
    return bytes(body[:_MOST])


def _why(exc: BaseException) -> str:
    """An exception, told without the request's URL (it may carry a password)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"{exc.host}:{exc.port}: {exc.strerror or exc.os_error!r}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__
