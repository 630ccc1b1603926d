"""What the SDK raises: one tree, rooted at :class:`BatgateError`.

Exceptions::

    BatgateError                  all the SDK raises on purpose (.message, .code, .status_code)
      AuthenticationError         401: missing or wrong credentials, disabled account
      NotFoundError               404: unknown message id (or another account's), unknown list
      RateLimitedError            429: .retry_after (seconds, or None); raised once retries run out
      ValidationError             the request or a message was refused; .code is the SPEC code
        IdempotencyKeyReusedError 422: the same Idempotency-Key with a different body
        MessageRejectedError      send_one()/send_sms(): the one message was rejected; .entry
        NotCancellableError       409 NOT_CANCELLABLE: cancel() of a message past `scheduled`
      ServerError                 5xx: the server failed; raised once retries run out
      NetworkError                no usable answer: connection refused/reset, DNS, TLS, …
      ProtocolError               the answer does not follow the API contract (not JSON, …)
      TimeoutError                also a builtins.TimeoutError
        RequestTimeoutError       an HTTP request timed out (once retries run out)
        DeliveryTimeoutError      wait_for_delivery()/wait_for_all(): not final in time;
                                  .last_status / .last_statuses hold what was seen last

`statuses()` does not raise per-id errors: each result carries its own `error`.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batgate.client.models import MessageStatus, SendEntry

__all__ = [
    "AuthenticationError",
    "BatgateError",
    "DeliveryTimeoutError",
    "IdempotencyKeyReusedError",
    "MessageRejectedError",
    "NetworkError",
    "NotCancellableError",
    "NotFoundError",
    "ProtocolError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerError",
    "TimeoutError",
    "ValidationError",
]


class BatgateError(Exception):
    """Base of every SDK error. `code` is the SPEC §6 error code when the server sent one."""

    def __init__(
        self, message: str, *, code: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code

    def __str__(self) -> str:
        where = " ".join(str(p) for p in (self.status_code, self.code) if p is not None)
        return f"{self.message} ({where})" if where else self.message


class AuthenticationError(BatgateError):
    """401: the credentials were missing or wrong, or the account is disabled."""


class NotFoundError(BatgateError):
    """404: no such message (ids of other accounts look exactly like unknown ones)."""


class RateLimitedError(BatgateError):
    """429, after the client's retries (or because `Retry-After` was too long to wait)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, status_code=status_code)
        self.retry_after = retry_after


class ValidationError(BatgateError):
    """The server refused the request or a message; `code` says why (e.g. INVALID_RECIPIENT)."""


class IdempotencyKeyReusedError(ValidationError):
    """422 IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used before with another body.

    (Earlier batgate builds answered 409 with the same code; that maps here too.)
    """


class MessageRejectedError(ValidationError):
    """The one message of `send_one()` / `send_sms()` was rejected; `entry` is its answer."""

    def __init__(self, entry: SendEntry) -> None:
        super().__init__(entry.error_message or "message rejected", code=entry.error_code)
        self.entry = entry


class NotCancellableError(ValidationError):
    """409 NOT_CANCELLABLE: `cancel()` of a message that is no longer `scheduled` (handed to a
    carrier, being handed over right now, or final — a cancelled one included)."""


class ServerError(BatgateError):
    """5xx: the server failed (after the client's retries)."""


class NetworkError(BatgateError):
    """No answer could be had: connection refused or reset, name resolution, TLS, …"""


class ProtocolError(BatgateError):
    """The answer does not follow the API contract (not JSON, a field missing or mistyped)."""


class TimeoutError(BatgateError, builtins.TimeoutError):
    """Something took longer than allowed; also catchable as the built-in TimeoutError."""


class RequestTimeoutError(TimeoutError):
    """An HTTP request timed out (connect, read, write or pool), after the client's retries."""


class DeliveryTimeoutError(TimeoutError):
    """Waiting for final statuses took longer than `timeout`.

    `last_statuses` maps every id waited for to the last status seen (None if no
    status could be read); `last_status` is the first id's, for the one-message case.
    """

    def __init__(self, message: str, last_statuses: Mapping[str, MessageStatus | None]) -> None:
        super().__init__(message)
        self.last_statuses = dict(last_statuses)

    @property
    def last_status(self) -> MessageStatus | None:
        return next(iter(self.last_statuses.values()), None)
