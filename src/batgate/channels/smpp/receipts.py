"""Delivery receipts as SMSCs write them, read into one shape. Pure.

A receipt comes as a deliver_sm (or data_sm) whose esm_class says "delivery
receipt", carrying the SMSC's message id and the message's state in the
`receipted_message_id` and `message_state` TLVs, in the classic text of SMPP 3.4
Appendix B, or both::

    id:0123456789 sub:001 dlvrd:001 submit date:2412061530 done date:2412061531
    stat:DELIVRD err:000 text:Order #1001 confirmed

TLVs win where both are present. Dates may have 10 or 12 digits (with seconds);
they are not needed for matching and are only checked to be digits. Ids are
matched after :func:`canonical` (case and leading zeros do not count), and an
SMSC that answers submit_sm in hex but writes receipts in decimal (or the other
way round) is matched through :class:`IdSpelling`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Literal

from batgate.channels.smpp.pdu import DataSm, ShortMessage, Tag, find_tlv
from batgate.domain.checks import is_digits
from batgate.domain.status import ChannelStatus

# esm_class message type bits (SMPP 3.4 §5.2.12): SMSC delivery receipt, and the
# intermediate delivery notification some SMSCs send while retrying.
_TYPE_BITS: Final = 0x3C
_RECEIPT_TYPES: Final = frozenset({0x04, 0x20})


class MessageState(IntEnum):
    """message_state (SMPP 3.4 §5.2.28)."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


# The text's `stat:` values (Appendix B), and the spellings some SMSCs use instead.
_STAT: Final = {
    "DELIVRD": MessageState.DELIVERED,
    "DELIVERED": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "UNDELIVERABLE": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "ACCEPTED": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
    "REJECTED": MessageState.REJECTED,
    "ENROUTE": MessageState.ENROUTE,
}

_FIELD = re.compile(
    r"(?i)\b(id|sub|dlvrd|submit date|done date|stat|err)\s*:\s*([^\s]*)",
)
_DATE = re.compile(r"\d{10}(\d{2})?")


@dataclass(frozen=True, slots=True)
class Receipt:
    message_id: str  # as the SMSC wrote it
    state: MessageState
    error: str | None = None


def is_receipt(pdu: ShortMessage | DataSm) -> bool:
    if (pdu.esm_class & _TYPE_BITS) in _RECEIPT_TYPES:
        return True
    return find_tlv(pdu.tlvs, Tag.RECEIPTED_MESSAGE_ID) is not None


def read_receipt(pdu: ShortMessage | DataSm) -> Receipt | None:
    """The receipt a deliver_sm/data_sm carries; None when it is not a receipt (an MO)
    or names no message id. A receipt without a readable state is UNKNOWN."""
    if not is_receipt(pdu):
        return None
    fields = _text_fields(pdu)
    id_tlv = find_tlv(pdu.tlvs, Tag.RECEIPTED_MESSAGE_ID)
    message_id = id_tlv.as_str() if id_tlv is not None else fields.get("id", "")
    if not message_id.strip():
        return None
    state_tlv = find_tlv(pdu.tlvs, Tag.MESSAGE_STATE)
    state: MessageState | None = None
    if state_tlv is not None and state_tlv.value:
        try:
            state = MessageState(state_tlv.as_int())
        except ValueError:
            state = None
    if state is None:
        state = _STAT.get(fields.get("stat", "").upper(), MessageState.UNKNOWN)
    return Receipt(message_id.strip(), state, fields.get("err"))


def _text_fields(pdu: ShortMessage | DataSm) -> dict[str, str]:
    if isinstance(pdu, ShortMessage):
        raw = pdu.short_message
    else:
        payload = find_tlv(pdu.tlvs, Tag.MESSAGE_PAYLOAD)
        raw = b"" if payload is None else payload.value
    if not raw:
        payload = find_tlv(pdu.tlvs, Tag.MESSAGE_PAYLOAD)
        raw = b"" if payload is None else payload.value
    # Receipt texts are ASCII whatever data_coding claims; the message's own text,
    # after `text:`, is not read.
    head = raw.decode("latin-1").split("text:", 1)[0].split("Text:", 1)[0]
    found: dict[str, str] = {}
    for key, value in _FIELD.findall(head):
        key = key.lower()
        if key.endswith("date") and not _DATE.fullmatch(value):
            continue
        found.setdefault(key, value)
    return found


UnknownStatus = Literal["processing", "delivered", "undeliverable"]


def channel_status(state: MessageState, unknown: UnknownStatus) -> ChannelStatus | None:
    """What a receipt's state means for the message; None: not final, keep waiting.

    DELIVERED → delivered; UNDELIVERABLE, REJECTED, EXPIRED, DELETED → undeliverable;
    ENROUTE and ACCEPTED are on the way; UNKNOWN is as configured.
    """
    if state is MessageState.DELIVERED:
        return ChannelStatus.DELIVERED
    if state in (MessageState.ENROUTE, MessageState.ACCEPTED):
        return None
    if state is MessageState.UNKNOWN:
        return None if unknown == "processing" else ChannelStatus(unknown)
    return ChannelStatus.UNDELIVERABLE


# -- matching ids ---------------------------------------------------------------------

IdFormat = Literal["auto", "same", "hex_to_decimal", "decimal_to_hex"]
_HEX: Final = re.compile(r"[0-9a-f]+")


def canonical(message_id: str) -> str:
    """An id as matched: trimmed, lower case, leading zeros dropped ("0" stays "0")."""
    lowered = message_id.strip().lower()
    return lowered.lstrip("0") or ("0" if lowered else "")


@dataclass(frozen=True, slots=True)
class IdSpelling:
    """How an SMSC's receipts spell the ids its submit_sm_resp gave (`receipt_ids`).

    - same: the same digits (up to case and leading zeros);
    - hex_to_decimal: submit_sm_resp in hex, receipts in decimal;
    - decimal_to_hex: submit_sm_resp in decimal, receipts in hex;
    - auto: either; a receipt is looked up under each reading of its id. Ids that
      read as numbers in both bases could in principle meet the wrong part, which
      needs two such parts waiting at once: pick the exact setting once the
      carrier's format is known.

    A part is stored under :meth:`part_key`; a receipt is stored, when it comes
    before its part, under :meth:`receipt_key`, and looks for its part under
    :meth:`lookups` (a part for its early receipt under :meth:`part_lookups`).
    """

    mode: IdFormat = "auto"

    def part_key(self, resp_id: str) -> str:
        key = canonical(resp_id)
        if self.mode == "hex_to_decimal" and _HEX.fullmatch(key):
            return str(int(key, 16))
        if self.mode == "decimal_to_hex" and is_digits(key):
            return canonical(format(int(key), "x"))
        return key

    def receipt_key(self, receipt_id: str) -> str:
        return canonical(receipt_id)

    def lookups(self, receipt_id: str) -> tuple[str, ...]:
        key = canonical(receipt_id)
        return _readings(key) if self.mode == "auto" else (key,)

    def part_lookups(self, part_key: str) -> tuple[str, ...]:
        return _readings(part_key) if self.mode == "auto" else (part_key,)


def _readings(key: str) -> tuple[str, ...]:
    """The id itself, then the same number written in the other base (when it reads as one)."""
    readings = [key]
    if is_digits(key) and len(key) <= 30:
        readings.append(canonical(format(int(key), "x")))
    if _HEX.fullmatch(key) and len(key) <= 24:
        readings.append(str(int(key, 16)))
    return tuple(dict.fromkeys(readings))
