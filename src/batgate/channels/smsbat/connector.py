"""The connector to an SMSBAT-compatible API upstream (SMSBAT itself, or another batgate).

**Hand-overs in batches.** Up to `batch_size` hand-overs go out as one `POST
/bat/messagelist` with an `Idempotency-Key`, at most `connections` requests at once.
A batch goes when it is full, when a turn of the event loop passed without another
hand-over joining it (the dispatcher starts a tick's hand-overs together, so they
arrive in one turn and a lone one does not wait), and at the latest `batch_window`
after its first hand-over. The upstream's answer is
read per message: `accepted` → taken, its upstream id kept like an SMSC's id of a
part; `rejected` → the step is undeliverable, the upstream's code and message its
reason.

**Never twice.** Each batch is written to the database (store.upstream_journal)
before it is first sent. A batch whose answer was lost (a timeout, the connection
dropped, a 500) is sent again with the same key and the same body — at once
(`retries`), then whenever one of its messages comes back (the switchboard keeps
such a step on this connector), and after a crash when another process takes its
messages back (their claim's lease ran out: `Outbound.resumed`) and finds their
batch in the journal: an upstream that honours the key answers what it answered
the first time, and each message of the batch gets its own answer. 502/503/504 and a
refused connection took nothing: the switchboard may give the step to another
connector.

**Refusals.** 401/403: our key is refused; the connector is down (skipped by routes
with another, `batgate connectors` says why) and messages wait without using
attempts; one batch tries again every `circuit_cooldown` seconds. 429: everything
waits the upstream's `Retry-After` without using attempts.

**Statuses** come by the upstream's signed webhooks (channels.smsbat.callbacks) and
by polling: parts with no final status `polls_after` seconds after their hand-over
are asked about, in `POST /bat/message/status` reads of up to 1,000 ids where the
upstream has it, else one `GET /bat/message/{id}` at a time at most `status_rate`
a second, each part's next ask twice as far off as its last, up to
`poll_max_delay`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from batgate.channels.base import CarrierDesk, Outbound
from batgate.channels.smsbat import wire
from batgate.config import SmsbatSettings, retry_pause
from batgate.domain.outcomes import (
    Accepted,
    CarrierCost,
    CarrierId,
    Failed,
    Handover,
    PartReceipt,
    SendResult,
)

log = logging.getLogger(__name__)

_JSON = "application/json"
# Statuses that say the upstream did not take the request (a proxy's, or its own
# "not now"): nothing to repeat under the same key, and another connector may try.
_NOT_TAKEN = frozenset({502, 503, 504})
_UNREACHABLE_WAIT = 1.0  # seconds, before a refused connection is tried again
_KEEP_ANSWERS = 100_000  # answers of batches sent again, kept for their other messages
_STATUS_BATCH = 1000
_POLL_LIMIT = 20_000  # parts asked about per poll at most

Key = tuple[str, int]  # (message id, step)


@dataclass(eq=False)
class Batch:
    """One `POST /bat/messagelist`: its key and body never change, so that sending it
    again is the same request."""

    key: str
    members: list[Key]
    body: bytes
    round: asyncio.Task[list[SendResult]] | None = None
    kept: bool = False  # written to the journal (before it is first sent)


class SmsbatConnector:
    def __init__(
        self,
        name: str,
        settings: SmsbatSettings,
        desk: CarrierDesk,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._settings = settings
        self._desk = desk
        self._clock = clock
        self._messages_url = f"{settings.url}/bat/messagelist"
        self._statuses_url = f"{settings.url}/bat/message/status"
        self._status_url = f"{settings.url}/bat/message/"
        self._auth = {"X-Authorization-Key": settings.api_key}
        self._session: aiohttp.ClientSession | None = None
        self._limit = asyncio.Semaphore(settings.connections)
        self._waiting: list[tuple[Outbound, asyncio.Future[SendResult]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._turn: asyncio.Handle | None = None
        self._joined = False  # a hand-over joined the batch in this turn of the loop
        self._first_at = 0.0  # when the batch's first hand-over came (loop time)
        self._rounds: set[asyncio.Task[Any]] = set()
        # Batches that may have been taken, by their messages; answers of such a batch
        # sent again, for its messages that have not come back yet.
        self._unanswered: dict[Key, Batch] = {}
        self._answers: OrderedDict[Key, SendResult] = OrderedDict()
        # Our key refused (401/403): why, and when a batch may try again.
        self.down_reason: str | None = None
        self.down_summary = "refused by the upstream"
        self._retry_refused_at = 0.0
        # Polling: when each part may be asked about again, and the way to ask.
        self._next_ask: dict[str, tuple[float, float]] = {}
        self._bulk = True
        self._poller: asyncio.Task[None] | None = None

    # -- the operator's view ------------------------------------------------------------

    @property
    def bound_links(self) -> int | None:
        """0 while the upstream refuses our key (the connector is down); else None:
        an HTTP upstream has no links to count."""
        return 0 if self.down_reason is not None else None

    @property
    def collecting(self) -> int:
        """Hand-overs waiting for their batch to go."""
        return len(self._waiting)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._poller = asyncio.create_task(self._poll_forever(), name=f"poll {self.name}")

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._waiting:
            self._flush()
        if self._rounds:
            await asyncio.wait(self._rounds, timeout=self._settings.timeout)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- hand-overs -------------------------------------------------------------------------

    async def send(self, message: Outbound) -> SendResult:
        key = (message.message_id, message.index)
        answer = self._answers.pop(key, None)
        if answer is not None:
            return answer
        batch = self._unanswered.get(key)
        if batch is None and message.resumed:
            batch = await self._kept_batch(key)
        if batch is not None:
            return await self._again(batch, key)
        if self.down_reason is not None and self._clock() < self._retry_refused_at:
            wait = self._retry_refused_at - self._clock()
            return Failed(self.down_reason, retryable=True, retry_after=max(0.1, wait))
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, future))
        if len(self._waiting) >= self._settings.batch_size:
            self._flush()
        else:
            self._joined = True
            if self._turn is None:
                loop = asyncio.get_running_loop()
                self._first_at = loop.time()
                self._turn = loop.call_soon(self._turn_ended)
        return await future

    def _turn_ended(self) -> None:
        """A turn of the loop ended: the batch goes unless it grew in that turn and
        its window is still open (then it waits for the next turn, or the window)."""
        self._turn = None
        loop = asyncio.get_running_loop()
        if not self._waiting:
            return
        window_left = self._first_at + self._settings.batch_window - loop.time()
        if not self._joined or window_left <= 0:
            self._flush()
            return
        self._joined = False
        if self._timer is None:  # the loop may sleep: the window's end wakes it
            self._timer = loop.call_later(window_left, self._flush)
        self._turn = loop.call_soon(self._turn_ended)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._turn is not None:
            self._turn.cancel()
            self._turn = None
        while self._waiting:
            taken = self._waiting[: self._settings.batch_size]
            del self._waiting[: self._settings.batch_size]
            body = orjson.dumps({"messages": [wire.upstream_message(m) for m, _ in taken]})
            members = [(m.message_id, m.index) for m, _ in taken]
            batch = Batch(uuid.uuid4().hex, members, body)
            round_ = self._start_round(batch)
            round_.add_done_callback(functools.partial(_settle, [f for _, f in taken]))

    def _start_round(self, batch: Batch) -> asyncio.Task[list[SendResult]]:
        batch.round = asyncio.create_task(self._post(batch), name=f"batch {batch.key}")
        self._rounds.add(batch.round)
        batch.round.add_done_callback(self._rounds.discard)
        return batch.round

    async def _kept_batch(self, key: Key) -> Batch | None:
        """The batch a message taken back after a crash was sent in, from the journal:
        it may have been taken, so it is sent again whole, with its key and body."""
        kept = (await self._desk.journaled(self.name, [key])).get(key)
        if kept is None:
            return None
        batch = self._unanswered.get(key)  # another of its messages found it meanwhile
        if batch is None or batch.key != kept.key:
            batch = Batch(kept.key, list(kept.members), kept.body, kept=True)
            for member in kept.members:
                self._unanswered.setdefault(member, batch)
        return batch

    async def _again(self, batch: Batch, key: Key) -> SendResult:
        """A message of a batch that may have been taken came back: the batch is sent
        again (once for all its messages that come back meanwhile)."""
        round_ = batch.round
        if round_ is None or round_.done():
            log.info(
                "%s: sending batch %s (%d messages) again with its key",
                self.name,
                batch.key,
                len(batch.members),
            )
            round_ = self._start_round(batch)
        results = await asyncio.shield(round_)
        return results[batch.members.index(key)]

    async def _post(self, batch: Batch) -> list[SendResult]:
        """Send the batch, trying again with its key while the answer is lost; one
        result per message. Remembers the batch while it may have been taken."""
        maybe_taken = any(self._unanswered.get(key) is batch for key in batch.members)
        if not batch.kept:
            try:
                await self._desk.journal(self.name, batch.key, batch.body, batch.members)
            except Exception as exc:  # nothing was sent: it may go anywhere
                log.exception("%s: could not keep batch %s before sending it", self.name, batch.key)
                why = f"{self.name}: the batch could not be kept before sending: {exc!r}"
                return [Failed(why, True, retry_after=1.0)] * len(batch.members)
            batch.kept = True
        why = ""
        for retry in range(self._settings.retries + 1):
            if retry:
                await asyncio.sleep(retry_pause(retry - 1))
            outcome = await self._post_once(batch)
            if isinstance(outcome, list):
                self._answered(batch, outcome)
                return outcome
            why, taken, wait = outcome
            maybe_taken = maybe_taken or taken
            if wait is not None and not taken:
                break  # refused or throttled: trying at once would not help
        # `wait`, the last try's: it did not reach the upstream (refused connection, key
        # refused, throttled), so the messages wait without using an attempt.
        if not maybe_taken:
            self._forget(batch)
            return [Failed(why, retryable=True, retry_after=wait)] * len(batch.members)
        for key in batch.members:
            self._unanswered[key] = batch
        # Taken or not, it is this connector's to answer: the step stays here.
        failed = Failed(why, retryable=True, retry_after=wait, maybe_taken=True)
        return [failed] * len(batch.members)

    async def _post_once(self, batch: Batch) -> list[SendResult] | tuple[str, bool, float | None]:
        """The answer per message; or why not, whether it may have been taken, and
        how long to wait (None: an attempt failed)."""
        headers = {**self._auth, "Content-Type": _JSON, "Idempotency-Key": batch.key}
        try:
            async with self._limit:
                async with self._client().post(
                    self._messages_url, data=batch.body, headers=headers
                ) as answer:
                    status, payload = answer.status, await answer.read()
                    retry_after = answer.headers.get("Retry-After")
        except aiohttp.ClientConnectorError as exc:
            return f"{self.name}: cannot connect to the upstream: {exc}", False, _UNREACHABLE_WAIT
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"{self.name}: no answer from the upstream: {exc!r}", True, None
        if status == 200:
            try:
                answers = wire.send_answer(orjson.loads(payload), len(batch.members))
            except (ValueError, wire.Unreadable) as exc:
                return f"{self.name}: the upstream's answer is unreadable: {exc}", True, None
            self._not_refused()
            return [self._result(a) for a in answers]
        said = _said(payload)
        if status in (401, 403):
            return self._refused(status, said), False, self._settings.circuit_cooldown
        if status == 429:
            wait = _seconds(retry_after)
            return f"{self.name}: throttled by the upstream (429{said})", False, wait
        if status in _NOT_TAKEN:
            return f"{self.name}: the upstream answered HTTP {status}{said}", False, None
        if status >= 500:
            return f"{self.name}: the upstream answered HTTP {status}{said}", True, None
        # Another 4xx: the request itself is wrong; sending it again would not help.
        refusal = Failed(f"{self.name}: the upstream answered HTTP {status}{said}", False)
        return [refusal] * len(batch.members)

    def _result(self, answer: wire.Taken | wire.Refused) -> SendResult:
        if isinstance(answer, wire.Taken):
            part = CarrierId(answer.upstream_id)
            return Accepted(answer.upstream_id, handover=Handover(self.name, (part,)))
        return Failed(f"rejected by the upstream: {answer.code}: {answer.message}", False)

    def _answered(self, batch: Batch, results: list[SendResult]) -> None:
        """A batch that had been sent before got its answer: kept for its messages
        that have not come back for it yet."""
        for key, result in zip(batch.members, results, strict=True):
            if self._unanswered.pop(key, None) is not None:
                self._answers[key] = result
        while len(self._answers) > _KEEP_ANSWERS:
            self._answers.popitem(last=False)

    def _forget(self, batch: Batch) -> None:
        for key in batch.members:
            if self._unanswered.get(key) is batch:
                del self._unanswered[key]

    def _refused(self, status: int, said: str) -> str:
        why = f"{self.name}: the upstream refused our API key (HTTP {status}{said})"
        if self.down_reason is None:
            log.error("%s; the connector is down until it is accepted", why)
        self.down_reason = why
        self._retry_refused_at = self._clock() + self._settings.circuit_cooldown
        return why

    def _not_refused(self) -> None:
        if self.down_reason is not None:
            log.warning("%s: the upstream accepts our API key again", self.name)
            self.down_reason = None

    # -- statuses by polling ----------------------------------------------------------------

    async def _poll_forever(self) -> None:
        trouble = ""
        while True:
            await asyncio.sleep(self._settings.poll_interval)
            try:
                await self.poll()
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError, RuntimeError) as exc:
                if repr(exc) != trouble:  # once per kind of trouble, not every second
                    log.warning("%s: polling statuses failed: %r", self.name, exc)
                trouble = repr(exc)
            except Exception:  # a bug: the next round tries again
                log.exception("%s: polling statuses failed", self.name)
            else:
                trouble = ""

    async def poll(self) -> int:
        """Ask about the parts with no status long enough after their hand-over; store
        what is final. How many parts were asked about."""
        now = self._clock()
        awaiting = await self._desk.awaiting(
            self.name, now - self._settings.polls_after, _POLL_LIMIT
        )
        self._next_ask = {i: self._next_ask[i] for i in awaiting if i in self._next_ask}
        due = [i for i in awaiting if self._next_ask.get(i, (0.0, 0.0))[0] <= now]
        for start in range(0, len(due), _STATUS_BATCH):
            chunk = due[start : start + _STATUS_BATCH]
            documents = await self._statuses(chunk)
            await self._keep(chunk, documents)
        return len(due)

    async def _statuses(self, ids: Sequence[str]) -> dict[str, Any]:
        """The upstream's status documents of these ids, where it gave one."""
        if self._bulk:
            documents = await self._statuses_in_bulk(ids)
            if documents is not None:
                return documents
        documents = {}
        for upstream_id in ids:
            started = time.monotonic()
            document = await self._get_status(upstream_id)
            if document is not None:
                documents[upstream_id] = document
            await asyncio.sleep(
                max(0.0, 1 / self._settings.status_rate - (time.monotonic() - started))
            )
        return documents

    async def _statuses_in_bulk(self, ids: Sequence[str]) -> dict[str, Any] | None:
        """None when the upstream has no bulk read (it is not asked again)."""
        body = orjson.dumps({"messageIds": list(ids)})
        headers = {**self._auth, "Content-Type": _JSON}
        async with self._limit:
            async with self._client().post(self._statuses_url, data=body, headers=headers) as r:
                status, payload = r.status, await r.read()
        if status in (404, 405):
            log.info("%s: the upstream has no bulk status read; asking one by one", self.name)
            self._bulk = False
            return None
        if status != 200:
            raise RuntimeError(f"bulk status read answered HTTP {status}{_said(payload)}")
        entries = wire.statuses_answer(orjson.loads(payload))
        return {
            str(e["messageId"]): e
            for e in entries
            if isinstance(e, dict) and "deliverystatus" in e and "messageId" in e
        }

    async def _get_status(self, upstream_id: str) -> Any:
        async with self._limit:
            async with self._client().get(self._status_url + upstream_id, headers=self._auth) as r:
                status, payload = r.status, await r.read()
        if status != 200:
            log.debug("%s: status of %s: HTTP %d", self.name, upstream_id, status)
            return None
        return orjson.loads(payload)

    async def _keep(self, asked: Sequence[str], documents: dict[str, Any]) -> None:
        receipts: list[PartReceipt] = []
        costs: list[CarrierCost] = []
        now = self._clock()
        for upstream_id in asked:
            news = None
            with contextlib.suppress(wire.Unreadable):
                if upstream_id in documents:
                    news = wire.news_of(documents[upstream_id], self._settings.currency)
            if news is not None and news.receipt is not None:
                receipts.append(news.receipt)
                if news.cost is not None:
                    costs.append(news.cost)
                self._next_ask.pop(upstream_id, None)
                continue
            _, last = self._next_ask.get(upstream_id, (0.0, 0.0))
            delay = min(max(2 * last, self._settings.polls_after), self._settings.poll_max_delay)
            self._next_ask[upstream_id] = (now + delay, delay)
        if costs:
            await self._desk.costs(self.name, costs)
        if receipts:
            await self._desk.receipts(self.name, receipts)

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop it belongs to.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._settings.connections),
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout),
            )
        return self._session


def _settle(
    futures: list[asyncio.Future[SendResult]], done: asyncio.Task[list[SendResult]]
) -> None:
    if done.cancelled():
        error: BaseException | None = asyncio.CancelledError()
    else:
        error = done.exception()
    for number, future in enumerate(futures):
        if future.done():
            continue
        if error is not None:
            future.set_result(Failed(f"sending failed: {error!r}", True, maybe_taken=True))
        else:
            future.set_result(done.result()[number])


def _said(payload: bytes) -> str:
    """The upstream's error message, as `: CODE: message`, when it sent one."""
    try:
        error = orjson.loads(payload).get("error", {})
        return f": {error['code']}: {error['message']}"
    except (ValueError, AttributeError, KeyError, TypeError):
        return ""


def _seconds(retry_after: str | None) -> float:
    try:
        return max(0.1, float(retry_after or 1))
    except ValueError:
        return 1.0
