"""The one client core: every request, answer, retry and wait of the SDK, without I/O.

`Client` and `AsyncClient` share all their logic through this module, in the
sans-I/O style: the core builds `httpx.Request`s and interprets `httpx.Response`s,
and every operation — one request with its retries, a status with its cache,
many statuses at once, waiting for delivery — is a generator that yields commands
and gets their outcomes sent back:

=======================  ===================================================
command                  what the driver sends back
=======================  ===================================================
``Call(request)``        the `httpx.Response`, or the `httpx.TransportError`
``Sleep(seconds)``       None, once that long has passed
``Gather(ops, n)``       a list, in order: each op's value, or the
                         `BatgateError` it raised; at most n ops at once
=======================  ===================================================

A driver is the ~30-line loop in `sync.py` (httpx.Client, time.sleep, threads)
or `aio.py` (httpx.AsyncClient, asyncio.sleep, tasks). Nothing here blocks, so
the core's tests feed it answers by hand.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypedDict, TypeVar
from urllib.parse import quote, urlencode

import httpx

from batgate import __version__
from batgate.client.cache import StatusCache
from batgate.client.errors import (
    AuthenticationError,
    BatgateError,
    DeliveryTimeoutError,
    IdempotencyKeyReusedError,
    MessageRejectedError,
    NetworkError,
    NotCancellableError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    ValidationError,
)
from batgate.client.messages import Message
from batgate.client.models import (
    InboundPage,
    MessagelistPage,
    MessagelistReport,
    MessageStatus,
    SendEntry,
    SendResult,
    StatusResult,
    statuses_of,
)
from batgate.client.retry import PollPolicy, RateLimiter, Retries, retry_after
from batgate.domain.status import DeliveryStatus

log = logging.getLogger("batgate.client")

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"
BULK_STATUS_PATH = "/bat/message/status"
INBOUND_PATH = "/bat/inbound"
MAX_IDS = 1000  # per POST /bat/message/status, and per page of a message list or inbox


@dataclass(frozen=True, slots=True)
class Call:
    request: httpx.Request


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Gather:
    ops: tuple[Op[Any], ...]
    concurrency: int


Command: TypeAlias = Call | Sleep | Gather
Op: TypeAlias = Generator[Command, Any, T]
OutgoingMessage: TypeAlias = Message | Mapping[str, Any]
Progress: TypeAlias = Callable[[list[MessageStatus]], None]
Found: TypeAlias = dict[str, MessageStatus | BatgateError]


class ClientOptions(TypedDict, total=False):
    """Keyword options shared by `Client` and `AsyncClient` (see their docstrings)."""

    api_key: str | None
    username: str | None
    password: str | None
    key_as_password: bool
    timeout: float | httpx.Timeout
    retries: Retries | bool
    cache: StatusCache | bool
    poll: PollPolicy
    sender: str | None
    headers: Mapping[str, str] | None


def _auth_headers(options: ClientOptions) -> dict[str, str]:
    api_key, username = options.get("api_key"), options.get("username")
    password = options.get("password")
    if api_key is not None and username is None:
        if options.get("key_as_password"):
            return {"Authorization": _basic("@", api_key)}
        return {"X-Authorization-Key": api_key}
    if username is not None and password is not None and api_key is None:
        return {"Authorization": _basic(username, password)}
    raise ValueError("give either api_key, or username and password")


def _basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def check_idempotency_key(key: str) -> str:
    """1–255 printable ASCII characters (no space), as batgate requires."""
    if not 1 <= len(key) <= 255 or not all("!" <= c <= "~" for c in key):
        raise ValueError("an idempotency key is 1-255 printable ASCII characters, no spaces")
    return key


class Core:
    """Configuration plus the operations. Its only shared mutable state (the cache, a call's
    rate limiter) is locked, so one Core serves many threads."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        options: ClientOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        opts = options or ClientOptions()
        self.base_url = base_url.rstrip("/")
        self.headers = {
            "User-Agent": f"batgate-client/{__version__} httpx/{httpx.__version__}",
            "Accept": "application/json",
            **_auth_headers(opts),
            **dict(opts.get("headers") or {}),
        }
        self.timeout = httpx.Timeout(opts.get("timeout", 10.0)).as_dict()
        retries = opts.get("retries", True)
        self.retries = retries if isinstance(retries, Retries) else Retries() if retries else None
        cache = opts.get("cache", False)
        self.cache = cache if isinstance(cache, StatusCache) else StatusCache() if cache else None
        self.poll = opts.get("poll") or PollPolicy()
        self.sender = opts.get("sender")
        self.clock = clock
        # Whether the server has `POST /bat/message/status` (batgate): None until it
        # answered once; False after a 404 or 405, for the rest of the client's life.
        self.bulk_status: bool | None = None

    # -- requests and answers ----------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Request:
        return httpx.Request(
            method,
            self.base_url + path,
            headers={**self.headers, **(headers or {})},
            json=body,
            extensions={"timeout": self.timeout},
        )

    def exchange(
        self,
        build: Callable[[], httpx.Request],
        *,
        retry: bool,
        limiter: RateLimiter | None = None,
    ) -> Op[httpx.Response]:
        """One request, tried again per `self.retries` when `retry`; the 2xx answer or raises."""
        failures = 0
        while True:
            if limiter is not None and (wait := limiter.reserve()) > 0:
                yield Sleep(wait)
            request = build()
            reply = yield Call(request)
            error = failure(reply)
            if error is None:
                response: httpx.Response = reply
                return response
            failures += 1
            delay = self._retry_delay(reply, failures) if retry else None
            if delay is None:
                raise error
            log.info(
                "%s %s failed (%s); retry %d in %.2f s",
                request.method,
                request.url.path,
                error,
                failures,
                delay,
            )
            yield Sleep(delay)

    def _retry_delay(
        self, reply: httpx.Response | httpx.TransportError, failures: int
    ) -> float | None:
        if self.retries is None:
            return None
        if isinstance(reply, httpx.TransportError):
            transient = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
            return self.retries.delay(failures) if isinstance(reply, transient) else None
        if reply.status_code not in self.retries.statuses:
            return None
        return self.retries.delay(failures, retry_after(reply.headers.get("Retry-After")))

    # -- operations ------------------------------------------------------------------------

    def wire(self, message: OutgoingMessage) -> dict[str, Any]:
        doc = message.to_json() if isinstance(message, Message) else dict(message)
        if doc.get("from") is None and self.sender is not None:
            doc["from"] = self.sender
        return doc

    def send(
        self, messages: Iterable[OutgoingMessage], idempotency_key: str | None = None
    ) -> Op[SendResult]:
        body = {"messages": [self.wire(m) for m in messages]}
        headers = {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = check_idempotency_key(idempotency_key)
        response = yield from self.exchange(
            lambda: self.request("POST", "/bat/messagelist", body, headers),
            retry=idempotency_key is not None,
        )
        return SendResult.from_json(json_of(response))

    def send_one(
        self, message: OutgoingMessage, idempotency_key: str | None = None
    ) -> Op[SendEntry]:
        result = yield from self.send([message], idempotency_key)
        if len(result.entries) != 1:
            raise ProtocolError(f"one message sent, {len(result.entries)} answered")
        entry = result.entries[0]
        if not entry.accepted:
            raise MessageRejectedError(entry)
        return entry

    def status(
        self, message_id: str, *, final_only: bool = False, limiter: RateLimiter | None = None
    ) -> Op[MessageStatus]:
        """One status; from the cache when it has one (with `final_only`: a final one)."""
        if not message_id:
            raise ValueError("message_id is empty")
        if self.cache is not None:
            cached = self.cache.get(message_id, final_only=final_only)
            if cached is not None:
                return cached
        path = f"/bat/message/{quote(message_id, safe='')}"
        response = yield from self.exchange(
            lambda: self.request("GET", path), retry=True, limiter=limiter
        )
        status = MessageStatus.from_json(json_of(response), message_id)
        if self.cache is not None:
            self.cache.put(status)
        return status

    def statuses(
        self,
        message_ids: Sequence[str],
        *,
        concurrency: int = 10,
        rate_limit: float | None = None,
        burst: int = 1,
    ) -> Op[list[StatusResult]]:
        """Many statuses, in input order, errors per id; an AuthenticationError is raised."""
        limiter = RateLimiter(rate_limit, burst, self.clock) if rate_limit else None
        found = yield from self.read_statuses(message_ids, concurrency=concurrency, limiter=limiter)
        results = [_result(mid, found[mid]) for mid in message_ids]
        for result in results:
            if isinstance(result.error, AuthenticationError):
                raise result.error
        return results

    def read_statuses(
        self,
        message_ids: Sequence[str],
        *,
        final_only: bool = False,
        concurrency: int = 10,
        limiter: RateLimiter | None = None,
    ) -> Op[Found]:
        """Each distinct id's status, or the error reading it.

        From the cache where it has one (with `final_only`: a final one); the rest
        through `POST /bat/message/status` in chunks of 1000 ids, or — for a single
        id, and where the server has no such route (a 404 or 405 to it, remembered
        for the client's life) — one GET per id.
        """
        found: Found = {}
        wanted: list[str] = []
        for mid in dict.fromkeys(message_ids):
            if not mid:
                raise ValueError("a message id is empty")
            cached = self.cache.get(mid, final_only=final_only) if self.cache is not None else None
            if cached is not None:
                found[mid] = cached
            else:
                wanted.append(mid)
        # One id alone is a GET: the server answers that on its fastest path.
        if len(wanted) > 1 and self.bulk_status is not False:
            wanted = yield from self._read_in_bulk(wanted, found, concurrency, limiter)
        if wanted:
            ops = tuple(self.status(mid, final_only=final_only, limiter=limiter) for mid in wanted)
            found.update(zip(wanted, (yield Gather(ops, max(1, concurrency))), strict=True))
        return found

    def _read_in_bulk(
        self, ids: list[str], found: Found, concurrency: int, limiter: RateLimiter | None
    ) -> Op[list[str]]:
        """Read `ids` in chunks into `found`; the ids left to read one by one."""
        chunks = [ids[i : i + MAX_IDS] for i in range(0, len(ids), MAX_IDS)]
        # The first chunk alone: its answer tells whether the server has the route.
        outcomes = yield Gather((self._read_chunk(chunks[0], limiter),), 1)
        if outcomes[0] is None:
            return ids
        if len(chunks) > 1:
            rest = tuple(self._read_chunk(chunk, limiter) for chunk in chunks[1:])
            outcomes += yield Gather(rest, max(1, concurrency))
        left: list[str] = []
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if outcome is None:
                left += chunk
            elif isinstance(outcome, BatgateError):
                found.update(dict.fromkeys(chunk, outcome))
            else:
                found.update(outcome)
        return left

    def _read_chunk(self, ids: list[str], limiter: RateLimiter | None) -> Op[Found | None]:
        """One `POST /bat/message/status`; None if the server has no such route."""
        body = {"messageIds": ids}
        try:
            response = yield from self.exchange(
                lambda: self.request("POST", BULK_STATUS_PATH, body), retry=True, limiter=limiter
            )
        except (NotFoundError, ValidationError) as exc:
            if exc.status_code not in (404, 405):
                raise
            log.info("no %s here (%s); reading statuses one by one", BULK_STATUS_PATH, exc)
            self.bulk_status = False
            return None
        self.bulk_status = True
        found: Found = dict(zip(ids, statuses_of(json_of(response), ids), strict=True))
        if self.cache is not None:
            for status in found.values():
                if isinstance(status, MessageStatus):
                    self.cache.put(status)
        return found

    def cancel(self, message_id: str) -> Op[MessageStatus]:
        """Cancel a message still `scheduled` (`DELETE /bat/message/{id}`, SPEC §12): its
        status, now `permanenterror` with cost 0; NotCancellableError once it is past
        `scheduled`, NotFoundError for an unknown id.

        Retried like a read: a cancel changes a message at most once, so a repeated
        DELETE can do no harm. Only its answer can mislead: when an earlier attempt's
        answer was lost, the retry may hear 409 about the cancel that attempt made. So
        a 409 after a failed attempt is checked against the message's status: a
        `permanenterror` costing nothing (what a cancel leaves; the message will not be
        sent in any case) is answered as the cancel's outcome.
        """
        if not message_id:
            raise ValueError("message_id is empty")
        path = f"/bat/message/{quote(message_id, safe='')}"
        attempts = 0

        def build() -> httpx.Request:
            nonlocal attempts
            attempts += 1
            return self.request("DELETE", path)

        try:
            response = yield from self.exchange(build, retry=True)
        except NotCancellableError as refused:
            if attempts == 1:
                raise
            status = yield from self.status(message_id, final_only=True)
            if status.status is not DeliveryStatus.PERMANENTERROR or status.cost:
                raise refused
            return status
        status = MessageStatus.from_json(json_of(response), message_id)
        if self.cache is not None:
            self.cache.put(status)
        return status

    def inbound(self, *, after: str | None = None, limit: int = 100) -> Op[InboundPage]:
        """One page of the account's inbound messages, oldest first (`GET /bat/inbound`,
        batgate): those after the cursor `after` (a previous page's `next_cursor`)."""
        if not 1 <= limit <= MAX_IDS:
            raise ValueError(f"limit must be from 1 to {MAX_IDS}")
        query: dict[str, str | int] = {"limit": limit}
        if after:
            query["after"] = after
        path = f"{INBOUND_PATH}?{urlencode(query)}"
        try:
            response = yield from self.exchange(lambda: self.request("GET", path), retry=True)
        except (NotFoundError, ValidationError) as exc:
            if isinstance(exc, NotFoundError) or exc.status_code == 405:
                raise NotFoundError(
                    f"no {INBOUND_PATH} here (inbound messages are a batgate extension)",
                    code=exc.code,
                    status_code=exc.status_code,
                ) from exc
            raise
        return InboundPage.from_json(json_of(response), after or None)

    def wait_for_all(
        self,
        message_ids: Sequence[str],
        *,
        timeout: float = 60.0,
        concurrency: int = 10,
        on_progress: Progress | None = None,
    ) -> Op[list[MessageStatus]]:
        """Poll until every message is final (in input order) or raise DeliveryTimeoutError.

        Each round looks at every message that is not final yet (as `statuses`
        does), then waits per `self.poll`, so no message is asked about more often
        than `poll.min_interval`. An error reading a status (after retries) is raised.
        """
        last: dict[str, MessageStatus | None] = dict.fromkeys(message_ids)
        deadline = self.clock() + timeout
        polls = 0
        while True:
            pending = [mid for mid, s in last.items() if s is None or not s.is_final]
            if pending:
                found = yield from self.read_statuses(
                    pending, final_only=True, concurrency=concurrency
                )
                for mid in pending:
                    out = found[mid]
                    if isinstance(out, BatgateError):
                        raise out
                    last[mid] = out
            seen = [s for s in (last[mid] for mid in message_ids) if s is not None]
            if on_progress is not None and pending:
                on_progress(seen)
            if all(s.is_final for s in seen):
                return seen
            polls += 1
            wait = self._next_poll(polls, deadline)
            if wait is None:
                raise _timeout(last, timeout)
            yield Sleep(wait)

    def _next_poll(self, polls: int, deadline: float) -> float | None:
        """Seconds to the next round, or None: no further round fits before the deadline."""
        remaining = deadline - self.clock()
        wait = self.poll.delay(polls)
        if wait <= remaining:
            return wait
        if remaining >= self.poll.min_interval:
            return remaining  # one last look, at the deadline
        return None

    def wait_for_delivery(self, message_id: str, *, timeout: float = 60.0) -> Op[MessageStatus]:
        statuses = yield from self.wait_for_all([message_id], timeout=timeout)
        return statuses[0]

    def report(self, messagelist_id: int) -> Op[MessagelistReport]:
        """Counts per status and total cost of one list (`GET /bat/messagelist/{id}`, batgate)."""
        doc = yield from self._messagelist(messagelist_id, {})
        return MessagelistReport.from_json(doc)

    def messagelist(
        self, messagelist_id: int, *, limit: int = 100, cursor: str | None = None
    ) -> Op[MessagelistPage]:
        """One page of a list's message statuses, with the list's report (batgate)."""
        if not 1 <= limit <= MAX_IDS:
            raise ValueError(f"limit must be from 1 to {MAX_IDS}")
        query: dict[str, str | int] = {"limit": limit}
        if cursor:
            query["cursor"] = cursor
        doc = yield from self._messagelist(messagelist_id, query)
        page = MessagelistPage.from_json(doc)
        if self.cache is not None:
            for status in page.messages:
                self.cache.put(status)
        return page

    def _messagelist(self, messagelist_id: int, query: Mapping[str, str | int]) -> Op[Any]:
        path = f"/bat/messagelist/{int(messagelist_id)}"
        if query:
            path += "?" + urlencode(query)
        try:
            response = yield from self.exchange(lambda: self.request("GET", path), retry=True)
        except (NotFoundError, ValidationError) as exc:
            if isinstance(exc, NotFoundError) or exc.status_code == 405:
                raise NotFoundError(
                    f"messagelist {messagelist_id} not found (the report is a batgate extension:"
                    " an SMSBAT endpoint without it answers the same)",
                    code=exc.code,
                    status_code=exc.status_code,
                ) from exc
            raise
        return json_of(response)


def _result(message_id: str, outcome: MessageStatus | BatgateError) -> StatusResult:
    if isinstance(outcome, BatgateError):
        return StatusResult(message_id, error=outcome)
    return StatusResult(message_id, status=outcome)


def _timeout(last: Mapping[str, MessageStatus | None], timeout: float) -> DeliveryTimeoutError:
    pending = [mid for mid, s in last.items() if s is None or not s.is_final]
    if len(last) == 1:
        (mid, status), *_ = last.items()
        seen = status.status.value if status is not None else "none"
        text = f"message {mid} not final after {timeout:g} s (last status: {seen})"
    else:
        text = f"{len(pending)} of {len(last)} messages not final after {timeout:g} s"
    return DeliveryTimeoutError(text, last)


# -- answers into values or errors ---------------------------------------------------------


def failure(reply: httpx.Response | httpx.TransportError) -> BatgateError | None:
    """None for a 2xx answer; otherwise the error it means."""
    if isinstance(reply, httpx.TimeoutException):
        return RequestTimeoutError(f"request timed out: {reply}")
    if isinstance(reply, httpx.TransportError):
        return NetworkError(f"{type(reply).__name__}: {reply}" if str(reply) else repr(reply))
    status = reply.status_code
    if 200 <= status < 300:
        return None
    code, message = _error_body(reply)
    kwargs: dict[str, Any] = {"code": code, "status_code": status}
    if status == 401:
        return AuthenticationError(message, **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status == 429:
        seconds = retry_after(reply.headers.get("Retry-After"))
        return RateLimitedError(message, retry_after=seconds, **kwargs)
    if code == "IDEMPOTENCY_KEY_REUSED" and status in (409, 422):  # 409: earlier builds
        return IdempotencyKeyReusedError(message, **kwargs)
    if code == "NOT_CANCELLABLE" and status == 409:
        return NotCancellableError(message, **kwargs)
    if 400 <= status < 500:
        return ValidationError(message, **kwargs)
    if status >= 500:
        return ServerError(message, **kwargs)
    return ProtocolError(f"unexpected HTTP status {status}", **kwargs)


def _error_body(response: httpx.Response) -> tuple[str | None, str]:
    """The SPEC §6 `{"error": {"code", "message"}}`, or what can be said without it."""
    try:
        error = response.json().get("error")
        code, message = error.get("code"), error.get("message")
        if isinstance(code, str) and isinstance(message, str):
            return code, message
    except (ValueError, AttributeError):
        pass
    text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    return None, text or response.reason_phrase or f"HTTP {response.status_code}"


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ProtocolError(
            f"the answer is not JSON: {response.text[:200]!r}", status_code=response.status_code
        ) from None
