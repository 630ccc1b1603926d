"""Message statuses: the status view (SPEC §3), its cache, and the answers built of it.

`GET /bat/message/{messageId}` answers one document; `POST /bat/message/status`
and the pages of `GET /bat/messagelist/{id}` answer lists of exactly the same
documents (the same bytes: they are embedded as they are).

Final statuses never change, so their serialised answers are cached by message
id (a bounded, first-in-first-out dict); that is safe with any number of
processes. Non-final ones are always read from the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from batgate.api.asgi import Answer, error_answer, failed_answer
from batgate.api.errors import ApiError, not_found
from batgate.api.gate import Gate
from batgate.domain.documents import status_view
from batgate.domain.records import Account, MessageRecord
from batgate.store.manager import Store

MAX_IDS = 1000  # per `POST /bat/message/status`


async def status_answer(
    gate: Gate, statuses: StatusService, headers: Mapping[str, str], address: str, message_id: str
) -> Answer:
    """`GET /bat/message/{messageId}`: the one implementation of the route, whichever
    way the request came in (api.fastpath, or the FastAPI route that documents it).

    In two parts: `answer_now` answers what needs nothing but memory and SQLite's
    synchronous lookup (a cached key, a token in hand: most lookups), `answer_later`
    the rest, awaiting what it must. The fast path calls them itself, so that the
    common case costs no coroutine at all."""
    now = answer_now(gate, statuses, headers, message_id)
    if isinstance(now, tuple):
        return now
    return await answer_later(gate, statuses, headers, address, message_id, now)


def answer_now(
    gate: Gate, statuses: StatusService, headers: Mapping[str, str], message_id: str
) -> Answer | Account | None:
    """The answer if it can be given at once. If not: the account if it was admitted
    at once (hand it to `answer_later`, which must not admit it twice), else None."""
    try:
        account = gate.admit_now(headers)
        if account is None:
            return None
        body = statuses.render_now(account.id, message_id)
        return account if body is None else (200, body, [])
    except ApiError as exc:
        return error_answer(exc)
    except Exception:
        return failed_answer("status lookup")


async def answer_later(
    gate: Gate,
    statuses: StatusService,
    headers: Mapping[str, str],
    address: str,
    message_id: str,
    admitted: Account | None = None,
) -> Answer:
    """The answer, awaiting whatever it needs (the store, the shared rate bucket, a
    password check); `admitted`: the account `answer_now` let in already."""
    try:
        account = admitted or await gate.admit(headers, address)
        return 200, await statuses.render(account.id, message_id), []
    except ApiError as exc:
        return error_answer(exc)
    except Exception:
        return failed_answer("status lookup")


class StatusService:
    def __init__(self, store: Store, cache_size: int) -> None:
        self._store = store
        self._cache_size = cache_size
        self._final: dict[str, tuple[int, bytes]] = {}

    @property
    def renders_now(self) -> bool:
        """Whether `render_now` always answers (it reads SQLite at once)."""
        return self._store.reads_now

    def render_now(self, account_id: int, message_id: str) -> bytes | None:
        """`render` when the answer is at hand (cached, or read at once from SQLite);
        None: await `render`. Raises ApiError 404 as `render` does."""
        hit = self._final.get(message_id)
        if hit is not None:
            if hit[0] != account_id:
                raise _unknown(message_id)
            return hit[1]
        if not _plausible(message_id):
            raise _unknown(message_id)
        found = self._store.status_document_now(message_id)
        if found is False:
            return None
        if found is None or found[0] != account_id:
            raise _unknown(message_id)
        return self._keep(message_id, account_id, found[1])

    async def render(self, account_id: int, message_id: str) -> bytes:
        """The JSON answer for the account's message, or ApiError 404.

        Another account's message answers exactly like an unknown id.
        """
        hit = self._final.get(message_id)
        if hit is not None:
            if hit[0] != account_id:
                raise _unknown(message_id)
            return hit[1]
        found = await self._store.status_document(message_id) if _plausible(message_id) else None
        if found is None or found[0] != account_id:
            raise _unknown(message_id)
        return self._keep(message_id, account_id, found[1])

    async def render_many(self, account_id: int, message_ids: Sequence[str]) -> bytes:
        """`{"messages": [...]}`: for each id, in order, what `render` answers for it —
        its status document, or `{"messageId", "error": {"code": "NOT_FOUND", …}}`.

        Cached final statuses come from the cache; the rest in one IN-list read.
        """
        found: dict[str, bytes | None] = {}
        wanted: list[str] = []
        for message_id in dict.fromkeys(message_ids):
            hit = self._final.get(message_id)
            if hit is not None:
                found[message_id] = hit[1] if hit[0] == account_id else None
            elif _plausible(message_id):
                wanted.append(message_id)
            else:
                found[message_id] = None
        if wanted:
            documents = await self._store.status_documents(account_id, wanted)
            for message_id in wanted:
                document = documents.get(message_id)
                found[message_id] = (
                    None if document is None else self._keep(message_id, account_id, document)
                )
        entries = [_entry(message_id, found[message_id]) for message_id in message_ids]
        return orjson.dumps({"messages": entries})

    def documents(self, records: Iterable[MessageRecord]) -> list[orjson.Fragment]:
        """The status documents of records already read, as `render` answers them."""
        documents = []
        for record in records:
            hit = self._final.get(record.id)
            documents.append(
                orjson.Fragment(hit[1] if hit is not None else self._serialise(record))
            )
        return documents

    def _serialise(self, record: MessageRecord) -> bytes:
        """The status document of a record read whole (a page of a list)."""
        body = orjson.dumps(status_view(record))
        if record.progress.status.is_final:
            # orjson's bytes keep their ~4 KiB working buffer; an exact-size copy makes
            # a full cache ~40 MB instead of ~400 MB.
            body = self._keep(record.id, record.account_id, memoryview(body).tobytes())
        return body

    def _keep(self, message_id: str, account_id: int, document: bytes) -> bytes:
        """`document`; kept in the cache when final (only a final one has `cost`)."""
        if self._cache_size > 0 and b'"cost":' in document:
            if len(self._final) >= self._cache_size:
                del self._final[next(iter(self._final))]
            self._final[message_id] = (account_id, document)
        return document


def message_ids_of(body: bytes) -> list[str]:
    """The ids of a `POST /bat/message/status` body: `{"messageIds": [1 to 1000 strings]}`.

    Not JSON: 400 (SPEC §6); JSON of another shape or size: 422.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "INVALID_REQUEST", "the body is not valid JSON") from None
    ids = doc.get("messageIds") if isinstance(doc, dict) else None
    if not isinstance(ids, list):
        raise _unprocessable('the body must be {"messageIds": ["…", …]}')
    if not 1 <= len(ids) <= MAX_IDS:
        raise _unprocessable(f"{len(ids)} message ids; ask for 1 to {MAX_IDS} at a time")
    for index, message_id in enumerate(ids):
        if not isinstance(message_id, str):
            raise _unprocessable(f"messageIds[{index}] is not a string")
    return ids


def _entry(message_id: str, body: bytes | None) -> orjson.Fragment | dict[str, Any]:
    if body is not None:
        return orjson.Fragment(body)
    error = _unknown(message_id)
    return {"messageId": message_id, "error": {"code": error.code, "message": error.message}}


def _plausible(message_id: str) -> bool:
    """Whether `message_id` could be one of ours (ASCII letters and digits, at most 64):
    anything else is answered "not found" without asking the database, where a NUL
    or a stray byte would fail the query (and, on PostgreSQL, every lookup that
    shares it: store.shared_reads)."""
    return len(message_id) <= 64 and message_id.isascii() and message_id.isalnum()


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, "INVALID_REQUEST", message)


def _unknown(message_id: str) -> ApiError:
    return not_found(f"no message with id {message_id[:64]!r}")
