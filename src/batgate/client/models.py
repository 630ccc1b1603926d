"""Typed answers of the API: what `send`, `status`, `statuses`, `report`, `messagelist`,
`cancel` and `inbound` return.

Each type is parsed from the JSON the server sent (`from_json`) and keeps that
document as `raw`, so a field a newer server adds is never out of reach. A field
the SPEC requires but the answer lacks, or has with the wrong type, is a
:class:`~batgate.client.errors.ProtocolError`; optional (extended) fields are None
when absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batgate.client.errors import BatgateError, NotFoundError, ProtocolError
from batgate.domain.status import ChannelStatus, DeliveryStatus

__all__ = [
    "ChannelStatus",
    "DeliveryStatus",
    "FallbackStatus",
    "InboundMessage",
    "InboundPage",
    "MessageStatus",
    "MessagelistPage",
    "MessagelistReport",
    "SendEntry",
    "SendResult",
    "StatusResult",
]


# -- field readers: the contract checks in one place ----------------------------------------


def _opt_str(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ProtocolError(f"{key!r} is not a string: {value!r}")


def _opt_int(doc: Mapping[str, Any], key: str) -> int | None:
    value = doc.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ProtocolError(f"{key!r} is not an integer: {value!r}")


def _opt_float(doc: Mapping[str, Any], key: str) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ProtocolError(f"{key!r} is not a number: {value!r}")


def _req_str(doc: Mapping[str, Any], key: str) -> str:
    value = _opt_str(doc, key)
    if value is None:
        raise ProtocolError(f"{key!r} is missing from the answer")
    return value


def _opt_bool(doc: Mapping[str, Any], key: str) -> bool | None:
    value = doc.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ProtocolError(f"{key!r} is not a boolean: {value!r}")


def _moment(doc: Mapping[str, Any], key: str) -> datetime:
    """An RFC 3339 time with an offset, as an aware datetime."""
    value = _req_str(doc, key)
    try:
        # RFC 3339 allows a lower-case "t" and "z", which fromisoformat does not read.
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        raise ProtocolError(f"{key!r} is not an RFC 3339 time: {value!r}") from None
    if moment.tzinfo is None:
        raise ProtocolError(f"{key!r} has no UTC offset: {value!r}")
    return moment


def _req_int(doc: Mapping[str, Any], key: str) -> int:
    value = _opt_int(doc, key)
    if value is None:
        raise ProtocolError(f"{key!r} is missing from the answer")
    return value


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{what} is not a JSON object: {value!r}")
    return value


def _delivery_status(value: Any) -> DeliveryStatus:
    try:
        return DeliveryStatus(value)
    except ValueError:
        raise ProtocolError(f"unknown deliverystatus {value!r}") from None


def _channel_status(value: Any) -> ChannelStatus:
    try:
        return ChannelStatus(value)
    except ValueError:
        raise ProtocolError(f"unknown channel status {value!r}") from None


# -- send ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendEntry:
    """One message of a send answer, in input order (`index` is its position)."""

    index: int
    status: str  # "accepted" or "rejected"
    message_id: str | None
    parts: int | None = None
    to: str | None = None
    customer_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    caller_id: str | None = None  # flash calls only, like pattern and ttl
    pattern: str | None = None
    ttl: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @classmethod
    def from_json(cls, index: int, value: Any) -> SendEntry:
        doc = _object(value, f"messages[{index}]")
        status = _opt_str(doc, "status")
        if status not in ("accepted", "rejected"):
            raise ProtocolError(f"messages[{index}].status is {status!r}")
        error = _object(doc.get("error") or {}, f"messages[{index}].error")
        entry = cls(
            index=index,
            status=status,
            message_id=_opt_str(doc, "messageId"),
            parts=_opt_int(doc, "parts"),
            to=_opt_str(doc, "to"),
            customer_message_id=_opt_str(doc, "customerMessageId"),
            error_code=_opt_str(error, "code"),
            error_message=_opt_str(error, "message"),
            caller_id=_opt_str(doc, "callerId"),
            pattern=_opt_str(doc, "pattern"),
            ttl=_opt_int(doc, "ttl"),
            raw=doc,
        )
        if entry.accepted and entry.message_id is None:
            raise ProtocolError(f"messages[{index}] is accepted but has no messageId")
        return entry


@dataclass(frozen=True, slots=True)
class SendResult:
    """The answer to `POST /bat/messagelist`: the list id and one entry per message."""

    messagelist_id: int
    entries: tuple[SendEntry, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def accepted(self) -> list[SendEntry]:
        return [e for e in self.entries if e.accepted]

    @property
    def rejected(self) -> list[SendEntry]:
        return [e for e in self.entries if not e.accepted]

    @property
    def message_ids(self) -> list[str]:
        """The ids of the accepted messages, in input order."""
        return [e.message_id for e in self.entries if e.message_id is not None]

    @classmethod
    def from_json(cls, value: Any) -> SendResult:
        doc = _object(value, "the send answer")
        messages = doc.get("messages")
        if not isinstance(messages, list):
            raise ProtocolError("the send answer has no 'messages' list")
        entries = tuple(SendEntry.from_json(i, m) for i, m in enumerate(messages))
        return cls(_req_int(doc, "messagelistId"), entries, doc)


# -- status ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FallbackStatus:
    """One fallback step of a message: its type (e.g. "sms") and channel status."""

    type: str
    status: ChannelStatus


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """The answer to `GET /bat/message/{id}` (SPEC §3); extended fields are None when absent."""

    message_id: str
    status: DeliveryStatus
    messagelist_id: int | None = None
    parts_count: int | None = None
    cost: float | None = None  # present once the status is final
    type: str | None = None
    to: str | None = None
    customer_message_id: str | None = None
    fallbacks: tuple[FallbackStatus, ...] = ()
    extended_statuses: Mapping[str, ChannelStatus] = field(default_factory=dict)
    rate: float | None = None
    rate_amount: float | None = None
    rate_currency: str | None = None
    bill_amount: float | None = None
    bill_currency: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_final(self) -> bool:
        """A final status never changes again (SPEC §3)."""
        return self.status.is_final

    @property
    def delivered(self) -> bool:
        return self.status is DeliveryStatus.DELIVERED

    @classmethod
    def from_json(cls, value: Any, message_id: str) -> MessageStatus:
        """Parse a status document; `message_id` is used if the answer omits it (as the seed's)."""
        doc = _object(value, "the status answer")
        return cls(
            message_id=_opt_str(doc, "messageId") or message_id,
            status=_delivery_status(doc.get("deliverystatus")),
            messagelist_id=_opt_int(doc, "messagelistId"),
            parts_count=_opt_int(doc, "partscount"),
            cost=_opt_float(doc, "cost"),
            type=_opt_str(doc, "type"),
            to=_opt_str(doc, "to"),
            customer_message_id=_opt_str(doc, "customerMessageId"),
            fallbacks=_fallbacks(doc.get("fallbacks")),
            extended_statuses=_extended(doc.get("extendedStatuses")),
            rate=_opt_float(doc, "rate"),
            rate_amount=_opt_float(doc, "rateAmount"),
            rate_currency=_opt_str(doc, "rateCurrency"),
            bill_amount=_opt_float(doc, "billAmount"),
            bill_currency=_opt_str(doc, "billCurrency"),
            raw=doc,
        )


def _fallbacks(value: Any) -> tuple[FallbackStatus, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProtocolError(f"'fallbacks' is not a list: {value!r}")
    steps = []
    for item in value:
        doc = _object(item, "a fallbacks entry")
        steps.append(FallbackStatus(str(doc.get("type")), _channel_status(doc.get("status"))))
    return tuple(steps)


def _extended(value: Any) -> dict[str, ChannelStatus]:
    if value is None:
        return {}
    doc = _object(value, "'extendedStatuses'")
    return {str(channel): _channel_status(status) for channel, status in doc.items()}


def statuses_of(value: Any, message_ids: Sequence[str]) -> list[MessageStatus | BatgateError]:
    """The answer of `POST /bat/message/status` (batgate) for `message_ids`, in their order:
    each entry a status, or the error in its place (NOT_FOUND: a NotFoundError, as the
    GET's 404 would be; an entry off the contract: a ProtocolError)."""
    doc = _object(value, "the statuses answer")
    entries = doc.get("messages")
    if not isinstance(entries, list) or len(entries) != len(message_ids):
        raise ProtocolError(f"the statuses answer has no 'messages' list of {len(message_ids)}")
    return [_status_entry(entry, mid) for entry, mid in zip(entries, message_ids, strict=True)]


def _status_entry(value: Any, message_id: str) -> MessageStatus | BatgateError:
    try:
        doc = _object(value, f"the entry of {message_id!r}")
        error = doc.get("error")
        if error is not None:
            error = _object(error, f"the error of {message_id!r}")
            code, message = _opt_str(error, "code"), _opt_str(error, "message")
            text = message or f"no status of {message_id!r}"
            if code == "NOT_FOUND":
                return NotFoundError(text, code=code, status_code=404)
            return BatgateError(text, code=code)
        status = MessageStatus.from_json(doc, message_id)
        if status.message_id != message_id:
            raise ProtocolError(f"asked for {message_id!r}, answered {status.message_id!r}")
        return status
    except ProtocolError as exc:
        return exc


@dataclass(frozen=True, slots=True)
class StatusResult:
    """One id of `statuses()`: either its status or the error reading it (never both)."""

    message_id: str
    status: MessageStatus | None = None
    error: BatgateError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# -- report (a batgate extension) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessagelistReport:
    """`GET /bat/messagelist/{id}`: counts per delivery status, total cost (batgate only).

    `raw` is the summary only: a page's messages are in `MessagelistPage`.
    """

    messagelist_id: int
    total: int
    counts: Mapping[str, int]
    cost: float
    currency: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def delivered(self) -> int:
        return self.counts.get(DeliveryStatus.DELIVERED.value, 0)

    @property
    def final(self) -> int:
        return sum(n for s, n in self.counts.items() if s in set(_FINAL_VALUES))

    @property
    def delivery_rate(self) -> float:
        """Delivered messages as a fraction of all messages of the list (0.0 for an empty list)."""
        return self.delivered / self.total if self.total else 0.0

    @classmethod
    def from_json(cls, value: Any) -> MessagelistReport:
        doc = _object(value, "the messagelist answer")
        counts = _object(doc.get("counts") or {}, "'counts'")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in counts.values()):
            raise ProtocolError(f"'counts' has a value that is not an integer: {counts!r}")
        return cls(
            messagelist_id=_req_int(doc, "messagelistId"),
            total=_req_int(doc, "total"),
            counts={str(k): int(v) for k, v in counts.items()},
            cost=_opt_float(doc, "cost") or 0.0,
            currency=_opt_str(doc, "currency"),
            raw={k: v for k, v in doc.items() if k not in _PAGE_FIELDS},
        )


@dataclass(frozen=True, slots=True)
class MessagelistPage:
    """A page of `GET /bat/messagelist/{id}` (batgate): the report of the whole list, and
    some of its messages' statuses in id order; `next_cursor` is None on the last page."""

    report: MessagelistReport
    messages: tuple[MessageStatus, ...]
    next_cursor: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, value: Any) -> MessagelistPage:
        doc = _object(value, "the messagelist answer")
        messages = doc.get("messages")
        if not isinstance(messages, list):
            raise ProtocolError(
                "the messagelist answer has no 'messages' (a server before paging?)"
            )
        statuses = tuple(MessageStatus.from_json(m, "") for m in messages)
        if any(not s.message_id for s in statuses):
            raise ProtocolError("a message of the page has no messageId")
        return cls(
            report=MessagelistReport.from_json(doc),
            messages=statuses,
            next_cursor=_opt_str(doc, "nextCursor") or None,
            raw=doc,
        )


# -- inbound messages (SPEC §10) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message from a phone to one of the account's numbers or senders (SPEC §10), as
    `GET /bat/inbound` lists it and its webhook carries it.

    `sender` is its `from` (the phone's number, E.164 when the carrier said so), as
    the send builders call `from`; `to` the account's number or sender it came to.
    `parts`: the parts it came in; `incomplete`: some never came, and `text` is those
    that did. `connector`: the carrier connection it came by. `in_reply_to`: the
    account's latest message to that number within 7 days, if any. `received_at` is
    aware (UTC on batgate).
    """

    inbound_id: int
    sender: str
    to: str
    text: str
    received_at: datetime
    parts: int
    connector: str
    incomplete: bool = False
    in_reply_to: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, value: Any) -> InboundMessage:
        doc = _object(value, "an inbound message")
        return cls(
            inbound_id=_req_int(doc, "inboundId"),
            sender=_req_str(doc, "from"),
            to=_req_str(doc, "to"),
            text=_req_str(doc, "text"),
            received_at=_moment(doc, "receivedAt"),
            parts=_req_int(doc, "parts"),
            connector=_req_str(doc, "connector"),
            incomplete=bool(_opt_bool(doc, "incomplete")),
            in_reply_to=_opt_str(doc, "inReplyTo"),
            raw=doc,
        )


@dataclass(frozen=True, slots=True)
class InboundPage:
    """A page of `GET /bat/inbound` (batgate): messages oldest first; `next_cursor` is the
    `after` of the next page, None on the last.

    `resume_after` is where to read on from later, whether or not more follow now: the
    next cursor, else the last message's id (batgate's cursor is the last id of a page),
    else the `after` this page was read with. Keep it to poll for new messages.
    """

    messages: tuple[InboundMessage, ...]
    next_cursor: str | None
    after: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def resume_after(self) -> str | None:
        if self.next_cursor is not None:
            return self.next_cursor
        if self.messages:
            return str(self.messages[-1].inbound_id)
        return self.after

    @classmethod
    def from_json(cls, value: Any, after: str | None = None) -> InboundPage:
        doc = _object(value, "the inbound answer")
        messages = doc.get("messages")
        if not isinstance(messages, list):
            raise ProtocolError("the inbound answer has no 'messages' list")
        return cls(
            messages=tuple(InboundMessage.from_json(m) for m in messages),
            next_cursor=_opt_str(doc, "nextCursor") or None,
            after=after,
            raw=doc,
        )


_PAGE_FIELDS = ("messages", "nextCursor")
_FINAL_VALUES = tuple(s.value for s in DeliveryStatus if s.is_final)
