"""The webhook sender: delivers outbox events, signed, in order per message, with retries.

Each event is delivered by its own task, so a slow or dead endpoint only ever
holds its own slots (`per_endpoint`) out of the global cap (`concurrency`);
events for an endpoint that is already at its limit are handed back untried.
Results are written in batches by one flusher, in one transaction each.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from batgate import __version__
from batgate.config import WebhookSettings
from batgate.domain.addresses import AddressPolicy
from batgate.domain.checks import is_digits
from batgate.domain.notifications import DeliveryAttempt, WebhookEvent
from batgate.domain.records import Account
from batgate.domain.retry import RetryPolicy
from batgate.engine.dispatcher import worker_name
from batgate.engine.guard import GuardedResolver, refusal
from batgate.observability import metrics
from batgate.store.manager import Store
from batgate.webhooks import signature_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    secrets: list[str]
    callback: bool  # a per-message callbackUrl rather than the account's endpoint

    @property
    def endpoint(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


def webhook_policy(settings: WebhookSettings) -> RetryPolicy:
    return RetryPolicy(
        tuple(settings.retry_delays),
        jitter=settings.jitter,
        after_last=settings.repeat_every,
        give_up_after=settings.give_up_after,
    )


class WebhookSender:
    def __init__(
        self,
        store: Store,
        settings: WebhookSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._claimed: set[int] = set()
        self._settings = settings
        self._clock = clock
        self._policy = webhook_policy(settings)
        self._addresses = AddressPolicy.allowing(settings.allow_private_callbacks)
        self._callbacks: aiohttp.ClientSession  # set by run()
        self._inflight: dict[str, int] = {}
        # Claimed events waiting for their endpoint, with the time they were claimed.
        self._queues: dict[str, deque[tuple[WebhookEvent, Target | None, float]]] = {}
        self._endpoint_of: dict[int, str] = {}
        self._max_backlog = settings.concurrency * 4  # claimed, not yet recorded
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: list[DeliveryAttempt] = []
        self._wakeup = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._stopping = False
        self.worker = worker_name()

    def wake(self) -> None:
        self._wakeup.set()

    def request_stop(self) -> None:
        """Claim and start nothing more: `run` returns once the deliveries under way are
        answered (or time out); events claimed but not started go back to the queue."""
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        # aiohttp rather than httpx here: on this hot path its client costs about a
        # fifth of the CPU per request (docs/benchmarks.md). Redirects are not followed.
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout)
        # Two sessions: the operator's URLs are trusted; a message's callbackUrl goes
        # through a resolver that connects only to addresses judged public (engine.guard).
        trusted = aiohttp.TCPConnector(limit=self._settings.concurrency, limit_per_host=0)
        guarded = aiohttp.TCPConnector(
            limit=self._settings.concurrency,
            limit_per_host=0,
            resolver=GuardedResolver(self._addresses),
            use_dns_cache=False,  # judged at every connection: DNS can change
        )
        async with (
            aiohttp.ClientSession(connector=trusted, timeout=timeout) as client,
            aiohttp.ClientSession(connector=guarded, timeout=timeout) as self._callbacks,
        ):
            flusher = asyncio.create_task(self._flush_loop())
            try:
                await self._claim_loop(client)
                await asyncio.gather(*self._tasks, return_exceptions=True)  # under way
            finally:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
                await self._flush()
                # Events cut off mid-request go back to the queue now, not after the lease.
                await self._store.outbox.defer(sorted(self._claimed), self._clock())

    async def _claim_loop(self, client: aiohttp.ClientSession) -> None:
        while not self._stopping:
            claimed = 0
            try:
                claimed = await self._claim(client)
            except Exception:
                log.exception("webhook claim failed")
            if claimed < self._settings.batch_size and not self._stopping:
                self._wakeup.clear()
                # Not wait_for: see Dispatcher._idle (a cancel meeting wake() was lost).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.poll_interval):
                        await self._wakeup.wait()

    async def _claim(self, client: aiohttp.ClientSession) -> int:
        room = self._max_backlog - len(self._claimed)
        if room <= 0:
            return 0
        now = self._clock()
        if not await self._store.outbox.anything_due(now):
            return 0
        events = await self._store.outbox.claim(
            self.worker,
            now,
            self._settings.lease_seconds,
            min(room, self._settings.batch_size),
            skip_accounts=self._backed_up_accounts(),
        )
        # Accounts are read fresh for every batch: a new URL or a rotated secret
        # applies to the very next event.
        accounts = await self._store.accounts_by_ids(e.account_id for e in events)
        for event in events:
            target = _target(event, accounts.get(event.account_id), now)
            key = target.endpoint if target is not None else ""
            if target is not None and not target.callback:
                self._endpoint_of[event.account_id] = key
            self._queues.setdefault(key, deque()).append((event, target, now))
            self._claimed.add(event.id)
        self._pump(client)
        return len(events)

    def _backed_up_accounts(self) -> list[int]:
        """Accounts whose endpoint already has a full queue here: not claimed for now.

        So a slow or dead endpoint holds at most `per_endpoint` requests in flight
        and a bounded queue, and never the claim budget of the others.
        """
        limit = 4 * self._settings.per_endpoint
        return [
            account
            for account, key in self._endpoint_of.items()
            if len(self._queues.get(key, ())) >= limit
        ]

    def _pump(self, client: aiohttp.ClientSession) -> None:
        """Start queued deliveries while their endpoint and the global cap allow."""
        if self._stopping:
            return  # what is queued goes back when the sender stops
        for key, queue in list(self._queues.items()):
            while queue and len(self._tasks) < self._settings.concurrency:
                if key and self._inflight.get(key, 0) >= self._settings.per_endpoint:
                    break
                self._start(client, *queue.popleft())
            if not queue:
                del self._queues[key]

    def _start(
        self,
        client: aiohttp.ClientSession,
        event: WebhookEvent,
        target: Target | None,
        claimed_at: float,
    ) -> None:
        key = target.endpoint if target is not None else ""
        self._inflight[key] = self._inflight.get(key, 0) + 1
        task = asyncio.create_task(self._attempt(client, event, target, claimed_at))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._inflight[key] -= 1
            if not self._inflight[key]:
                del self._inflight[key]
            if not t.cancelled():
                self._pump(client)
                self.wake()  # room in the backlog: claim more

        task.add_done_callback(done)

    async def _attempt(
        self,
        client: aiohttp.ClientSession,
        event: WebhookEvent,
        target: Target | None,
        claimed_at: float,
    ) -> None:
        now = self._clock()
        if now + self._settings.timeout >= claimed_at + self._settings.lease_seconds:
            # Waited so long here that the lease could run out mid-request and another
            # worker send it too: hand it back instead.
            self._claimed.discard(event.id)
            await self._store.outbox.defer([event.id], now)
            return
        await self._deliver(client, event, target)

    async def _deliver(
        self, client: aiohttp.ClientSession, event: WebhookEvent, target: Target | None
    ) -> None:
        started = self._clock()
        if target is None:
            metrics.webhook_failures("no_url").inc()
            self._finish(event, started, 0.0, None, "no webhook URL configured")
            return
        if target.callback:
            why = refusal(self._addresses, target.url)
            if why is not None:
                metrics.webhook_failures("refused").inc()
                self._finish(event, started, 0.0, None, f"not sent: {why}")
                return
            client = self._callbacks
        headers = signature_headers(target.secrets, event.webhook_id, int(started), event.payload)
        headers["content-type"] = "application/json"
        headers["user-agent"] = f"batgate/{__version__}"
        try:
            async with client.post(
                target.url, data=event.payload, headers=headers, allow_redirects=False
            ) as response:
                code = response.status
                retry_after_header = response.headers.get("retry-after")
                response.release()  # the body is not needed; free the connection
        except TimeoutError:
            metrics.webhook_failures("timeout").inc()
            self._failed(event, started, None, "timeout", None)
            return
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            metrics.webhook_failures("connection").inc()
            self._failed(event, started, None, f"{type(exc).__name__}: {exc}"[:500], None)
            return
        if 200 <= code < 300:
            self._finish(event, started, self._elapsed(started), code, None, delivered=True)
            return
        metrics.webhook_failures("http_status").inc()
        if code == 410:
            await self._gone(event, target, started, code)
        else:
            retry_after = _retry_after(retry_after_header, self._clock())
            self._failed(event, started, code, f"HTTP {code}", retry_after)

    async def _gone(self, event: WebhookEvent, target: Target, started: float, code: int) -> None:
        duration = self._elapsed(started)
        if target.callback:
            self._finish(event, started, duration, code, "410 Gone")
            return
        # The endpoint says it is gone for good: stop sending until an operator
        # re-enables it; its events wait, in order.
        await self._store.outbox.disable_endpoint(event.account_id, "410 Gone from " + target.url)
        log.warning("webhook endpoint %s answered 410: disabled", target.endpoint)
        metrics.webhook_deliveries("disabled").inc()
        self._record(
            DeliveryAttempt(
                event.id,
                started,
                duration,
                code,
                "410 Gone",
                "pending",
                event.attempts + 1,
                self._clock(),
            )
        )

    def _failed(
        self,
        event: WebhookEvent,
        started: float,
        code: int | None,
        error: str,
        retry_after: float | None,
    ) -> None:
        attempts = event.attempts + 1
        delay = self._policy.delay(attempts)
        duration = self._elapsed(started)
        if delay is None:
            self._finish(event, started, duration, code, error)
            return
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._settings.max_retry_after))
        metrics.webhook_deliveries("retrying").inc()
        self._record(
            DeliveryAttempt(
                event.id,
                started,
                duration,
                code,
                error,
                "pending",
                attempts,
                self._clock() + delay,
            )
        )

    def _finish(
        self,
        event: WebhookEvent,
        started: float,
        duration: float,
        code: int | None,
        error: str | None,
        *,
        delivered: bool = False,
    ) -> None:
        """Record the last attempt: delivered, or failed for good."""
        state = "delivered" if delivered else "failed"
        metrics.webhook_deliveries(state).inc()
        self._record(
            DeliveryAttempt(
                event.id, started, duration, code, error, state, event.attempts + 1, None
            )
        )

    def _elapsed(self, started: float) -> float:
        return max(0.0, (self._clock() - started) * 1000)

    def _record(self, attempt: DeliveryAttempt) -> None:
        self._claimed.discard(attempt.event_id)
        self._results.append(attempt)
        self._flush_now.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_now.wait()
            self._flush_now.clear()
            await asyncio.sleep(0.005)  # let a few more results gather
            try:
                await self._flush()
            except Exception:
                log.exception("recording webhook attempts failed; retrying")
                await asyncio.sleep(1.0)
                self._flush_now.set()

    async def _flush(self) -> None:
        batch, self._results = self._results, []
        try:
            await self._store.outbox.record(batch)
        except BaseException:
            self._results[:0] = batch
            raise
        if batch:
            self.wake()  # later events of these messages may be due now


def _target(event: WebhookEvent, account: Account | None, now: float) -> Target | None:
    if account is None:
        return None
    url = event.url or account.webhook_url
    if not url:
        return None
    return Target(url, account.signing_secrets(now), callback=event.url is not None)


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if is_digits(value):
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)
