"""`POST /bat/messagelist`: parse the batch, judge each message, store the accepted ones.

A request-level problem (not JSON, no messages, a non-object element, too many
messages, too big) answers 400/413 and stores nothing; everything else is judged
per message, so one bad message never sinks the batch (SPEC §2). A message to a
number on the account's suppression list is rejected as OPTED_OUT (SPEC §11), after
every other check: nothing is stored or billed for it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import ClientDisconnect

from batgate.api.callbacks import CallbackScreen, Judged
from batgate.api.errors import ApiError
from batgate.domain.checks import is_digits
from batgate.domain.messages import MessageType, NewMessage, Rejection
from batgate.domain.optout import as_stored, recipients, screened
from batgate.domain.records import Account
from batgate.domain.schedule import QuietHours, is_held_type
from batgate.domain.validation import Limits, validate_message
from batgate.store.idempotency import Idempotency, IdempotencyConflict
from batgate.store.manager import Store


class SendService:
    def __init__(
        self,
        store: Store,
        limits: Limits,
        max_messages: int,
        max_body_bytes: int,
        on_stored: Callable[[], None],
        callbacks: CallbackScreen,
        clock: Callable[[], float] = time.time,
        quiet_hours: Mapping[str, QuietHours] | None = None,
    ) -> None:
        self._store = store
        # By username; "*" for every account without its own (SPEC §12).
        self._quiet = dict(quiet_hours or {})
        self._callbacks = callbacks
        self._limits = limits
        self._max_messages = max_messages
        self._max_body_bytes = max_body_bytes
        self._on_stored = on_stored
        self._clock = clock

    async def read_body(self, declared_length: str | None, chunks: AsyncIterator[bytes]) -> bytes:
        if declared_length is not None and is_digits(declared_length):
            if int(declared_length) > self._max_body_bytes:
                raise self._too_large()
        body = bytearray()
        try:
            async for chunk in chunks:
                body += chunk
                if len(body) > self._max_body_bytes:
                    raise self._too_large()
        except ClientDisconnect:
            # Gone before its body was whole (or cut off as too slow, api.server): not
            # an error of ours, and nothing was stored. The answer reaches no one.
            raise _bad_request("the request body was cut off: the client went away") from None
        return bytes(body)

    async def send(
        self, account: Account, body: bytes, idempotency_key: str | None = None
    ) -> bytes:
        raw = self._messages_of(_parse_json(body))
        now = self._clock()
        judged = [validate_message(m, self._limits, now) for m in raw]
        valid = await self._callbacks.screen(self._held(account, judged, now))
        judged = valid
        numbers = recipients(valid)
        if numbers:  # one lookup per batch, none for an account without a list
            suppressed = await self._store.suppressions.suppressed(account.id, numbers)
            judged = screened(valid, suppressed)
        accepted = [j for j in judged if isinstance(j, NewMessage)]
        key = _idempotency(idempotency_key, body)
        try:
            sent = await self._store.send(account, accepted, now, key)
        except IdempotencyConflict:
            raise ApiError(
                422,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used with a different request body",
            ) from None
        if sent.replayed:
            return sent.replayed  # the first answer, as it was
        if sent.replayed is not None:
            # A key whose first answer is not kept (yet): rendered again from what it
            # stored. The suppression list may have changed since, so which messages
            # were stored is read, not judged again.
            stored = await self._store.messages_of(account.id, sent.message_ids)
            judged = as_stored(valid, [stored[i].chain for i in sent.message_ids if i in stored])
        # Rendered after the transaction, from the ids it stored.
        new_ids = iter(sent.message_ids)
        entries = [
            _rejected(m, j) if isinstance(j, Rejection) else _accepted(next(new_ids), j)
            for m, j in zip(raw, judged, strict=True)
        ]
        answer = orjson.dumps({"messagelistId": sent.messagelist_id, "messages": entries})
        if key is not None:
            await self._store.keep_answer(account, key, answer)
        if sent.replayed is None and accepted:
            self._on_stored()
        return answer

    def _held(self, account: Account, judged: list[Judged], now: float) -> list[Judged]:
        """The promotions among them held until the account's quiet hours end."""
        quiet = self._quiet.get(account.username) or self._quiet.get("*")
        if quiet is None:
            return judged
        held: list[Judged] = []
        for j in judged:
            if isinstance(j, NewMessage) and is_held_type(j.primary.type, j.promotional):
                release = quiet.release(now if j.send_at is None else j.send_at, j.to)
                if release is not None:
                    j = replace(j, send_at=release)
            held.append(j)
        return held

    def _messages_of(self, doc: Any) -> list[dict[str, Any]]:
        messages = doc.get("messages") if isinstance(doc, dict) else doc
        if not isinstance(messages, list):
            raise _bad_request('the body must be {"messages": [...]} or a JSON array of messages')
        if not messages:
            raise _bad_request("no messages to send")
        if len(messages) > self._max_messages:
            raise ApiError(
                413,
                "PAYLOAD_TOO_LARGE",
                f"{len(messages)} messages in one request; the maximum is {self._max_messages}",
            )
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise _bad_request(f"messages[{index}] is not a JSON object")
        return messages

    def _too_large(self) -> ApiError:
        return ApiError(413, "PAYLOAD_TOO_LARGE", f"request body over {self._max_body_bytes} bytes")


def _idempotency(key: str | None, body: bytes) -> Idempotency | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not all(" " < c <= "~" for c in key):
        raise _bad_request("Idempotency-Key must be 1-255 printable ASCII characters")
    return Idempotency(key, hashlib.sha256(body).hexdigest())


def _parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses lone surrogates ("\ud800") for the whole document; the stdlib
    # parser keeps them, so validation can reject just that message (INVALID_ENCODING).
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise _bad_request("the body is not valid JSON") from None


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "INVALID_REQUEST", message)


def _echo(raw: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    for field in ("customerMessageId", "to"):
        value = raw.get(field)
        if isinstance(value, str):
            entry[field] = _printable(value)
    return entry


def _printable(value: str) -> str:
    """The caller's string, with lone surrogates (not valid UTF-8) escaped (`\\ud800`)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode()
    return value


def _accepted(message_id: str, m: NewMessage) -> dict[str, Any]:
    step = m.primary
    entry: dict[str, Any] = {"messageId": message_id, "status": "accepted", "parts": step.parts}
    if m.customer_message_id is not None:
        entry["customerMessageId"] = m.customer_message_id
    entry["to"] = m.to
    if step.type is MessageType.FLASHCALL and step.message_data is not None:
        caller = str(step.message_data["callerId"])
        entry["callerId"] = caller
        entry["pattern"] = "***" + caller[-6:]
        entry["ttl"] = step.ttl
    return entry


def _rejected(raw: dict[str, Any], rejection: Rejection) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "messageId": None,
        "status": "rejected",
        "error": {"code": rejection.code.value, "message": rejection.message},
    }
    return _echo(raw, entry)
