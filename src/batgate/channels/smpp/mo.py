"""Mobile-originated messages over SMPP: deliver_sm / data_sm that are not receipts. Pure.

:func:`read_mo` reads one PDU into a :class:`MoPart`: who sent it to whom, its user
data (the user data header taken off) and, when it is one part of several, the
reference, count and number that tie it to the others. :class:`Reassembler` puts
parts back together into :class:`~batgate.domain.inbound.InboundText`, and gives out
what came of a message whose other parts stopped coming, marked incomplete.

Nothing here raises on what an SMSC or a phone wrote: an octet no alphabet has, a
surrogate without its pair, a header that runs past the data, all read as U+FFFD
or as no header, so that a malformed message is still stored and acknowledged
rather than sent again and again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from batgate.channels.smpp.pdu import DataSm, ShortMessage, Tag, Tlv, find_tlv

# The GSM 03.38 tables of sending, read the other way round (one table, two directions).
from batgate.channels.smpp.text import _BASIC, _ESCAPE, _EXTENSION, UDHI
from batgate.domain.checks import is_digits
from batgate.domain.inbound import InboundText

REPLACEMENT: Final = "\ufffd"
INTERNATIONAL: Final = 1  # type of number (TON): the address is E.164 without its `+`
_GSM7: Final = "gsm7"  # not a Python codec: decoded by _gsm7
_UTF16: Final = "utf-16-be"

# Octet (one septet per octet, "unpacked") → character; above 0x7F no septet: U+FFFD.
# The escape stays itself here and is read with the octet after it by _gsm7.
_FROM_SEPTETS: Final = tuple(_BASIC) + (REPLACEMENT,) * 128
_FROM_EXTENSION: Final = {code: char for char, code in _EXTENSION.items()}

# data_coding (SMPP 3.4 §5.2.19) → codec. 2 and 4 are 8-bit binary: no alphabet says
# what the octets mean, and Latin-1 keeps every one of them as one character, so
# nothing is lost and the owner can still read them.
_CODECS: Final = {
    0x00: _GSM7,
    0x01: "ascii",  # IA5
    0x02: "latin-1",
    0x03: "latin-1",
    0x04: "latin-1",
    0x06: "iso8859_5",  # Cyrillic
    0x07: "iso8859_8",  # Latin/Hebrew
    0x08: _UTF16,  # UCS-2; surrogate pairs (UTF-16) are joined
}
# GSM 03.38 coding groups' alphabet bits (3..2): default, 8-bit, UCS-2, reserved.
_GROUP_ALPHABETS: Final = (_GSM7, "latin-1", _UTF16, "latin-1")

_CONCAT_8BIT: Final = 0x00  # UDH information element: concatenation, 8-bit reference
_CONCAT_16BIT: Final = 0x08  # the same with a 16-bit reference

PartKey = tuple[str, str, int, int]  # (sender, recipient, reference, total)


@dataclass(frozen=True, slots=True)
class Concat:
    """A part's place in its message: the reference shared by its parts, how many
    there are, and which one this is (from 1)."""

    ref: int
    total: int
    seq: int

    @property
    def valid(self) -> bool:
        return self.total >= 2 and 1 <= self.seq <= self.total


@dataclass(frozen=True, slots=True)
class MoPart:
    """One deliver_sm / data_sm of a mobile-originated message.

    `data` is the user data as sent (user data header removed), in `data_coding`;
    it is decoded only when the message is whole, so that a character an odd phone
    cut in two across parts (an escape, a surrogate pair) is read whole.
    `concat` is None for a message in one part.
    """

    sender: str
    recipient: str
    data_coding: int
    data: bytes
    concat: Concat | None = None

    @property
    def text(self) -> str:
        return decode_text(self.data, self.data_coding)

    @property
    def key(self) -> PartKey | None:
        """What the parts of one message share; None for a message in one part."""
        c = self.concat
        return None if c is None else (self.sender, self.recipient, c.ref, c.total)


def read_mo(pdu: ShortMessage | DataSm) -> MoPart:
    """A deliver_sm or data_sm that is not a receipt (see receipts.is_receipt) as a part.

    The text is in `short_message`, or in `message_payload` when short_message is
    empty (always, for data_sm). Parts are numbered by a user data header (esm_class
    UDHI) or by the `sar_*` TLVs; numbering that makes no sense (part 0, 3 of 2, 1 of
    1) is taken as a message in one part, so its text is kept.
    """
    data = _user_data(pdu)
    concat: Concat | None = None
    if pdu.esm_class & UDHI:
        concat, data = split_udh(data)
    if concat is None:
        concat = _sar(pdu.tlvs)
    return MoPart(
        sender=address(pdu.source_addr, pdu.source_addr_ton),
        recipient=address(pdu.destination_addr, pdu.dest_addr_ton),
        data_coding=pdu.data_coding,
        data=data,
        concat=concat if concat is not None and concat.valid else None,
    )


def address(addr: str, ton: int) -> str:
    """An address as InboundText has it: `+` and the digits when the SMSC says it is
    international, else as written (alphanumeric names, short codes, national numbers)."""
    if ton == INTERNATIONAL and is_digits(addr):
        return "+" + addr
    return addr


def _user_data(pdu: ShortMessage | DataSm) -> bytes:
    if isinstance(pdu, ShortMessage) and pdu.short_message:
        return pdu.short_message
    payload = find_tlv(pdu.tlvs, Tag.MESSAGE_PAYLOAD)
    return b"" if payload is None else payload.value


def split_udh(data: bytes) -> tuple[Concat | None, bytes]:
    """The concatenation element of the user data header `data` starts with, and the
    user data after the header. Other elements (ports, …) are skipped; a header that
    claims more octets than there are ends the data (nothing left to read as text).

    The header takes whole octets whatever the alphabet: with GSM-7 sent one septet
    per octet (as SMPP carries it) the text starts at the next octet.
    """
    if not data:
        return None, data
    end = 1 + data[0]
    header = data[1:end]
    concat: Concat | None = None
    at = 0
    while at + 2 <= len(header):
        element, size = header[at], header[at + 1]
        value = header[at + 2 : at + 2 + size]
        at += 2 + size
        if len(value) != size:
            break
        if element == _CONCAT_8BIT and size == 3:
            concat = Concat(value[0], value[1], value[2])
        elif element == _CONCAT_16BIT and size == 4:
            concat = Concat(value[0] << 8 | value[1], value[2], value[3])
    return concat, data[end:]


def _sar(tlvs: Sequence[Tlv]) -> Concat | None:
    found = [
        find_tlv(tlvs, tag)
        for tag in (Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM)
    ]
    if any(tlv is None or not tlv.value for tlv in found):
        return None
    ref, total, seq = (tlv.as_int() for tlv in found if tlv is not None)
    return Concat(ref, total, seq)


# -- alphabets --------------------------------------------------------------------------


def codec(data_coding: int) -> str:
    """The alphabet of a data_coding: SMPP's own values first, then GSM 03.38's coding
    groups (general data coding, message waiting, data coding/message class); what
    neither names is read as 8-bit (Latin-1), which keeps every octet."""
    known = _CODECS.get(data_coding)
    if known is not None:
        return known
    if data_coding & 0xF0 == 0xF0:  # data coding / message class: bit 2, 8-bit or default
        return "latin-1" if data_coding & 0x04 else _GSM7
    if data_coding & 0xE0 == 0x00:  # general data coding, uncompressed (0x10-0x1F here)
        return _GROUP_ALPHABETS[(data_coding >> 2) & 0x03]
    if 0xC0 <= data_coding <= 0xDF:  # message waiting indication, default alphabet
        return _GSM7
    if 0xE0 <= data_coding <= 0xEF:  # message waiting indication, UCS-2
        return _UTF16
    return "latin-1"


def decode_text(data: bytes, data_coding: int) -> str:
    """User data as text; an octet or unit the alphabet has no character for is U+FFFD."""
    name = codec(data_coding)
    if name == _GSM7:
        return _gsm7(data)
    return data.decode(name, errors="replace")


def _gsm7(data: bytes) -> str:
    """GSM 03.38, one septet per octet; 0x1B escapes to the extension table."""
    if _ESCAPE not in data:
        return data.decode("latin-1").translate(_FROM_SEPTETS)
    out: list[str] = []
    at, end = 0, len(data)
    while at < end:
        octet = data[at]
        if octet != _ESCAPE:
            out.append(_FROM_SEPTETS[octet])
            at += 1
        elif at + 1 == end:
            out.append(REPLACEMENT)  # an escape with nothing after it
            at += 1
        else:
            out.append(_extension(data[at + 1]))
            at += 2
    return "".join(out)


def _extension(septet: int) -> str:
    """The character an escape and `septet` stand for. One the extension table does not
    have is shown as the main table's (GSM 03.38 §6.2.1.1); a second escape, reserved
    for another table, as a space (as the standard says, until one is defined)."""
    if septet in _FROM_EXTENSION:
        return _FROM_EXTENSION[septet]
    if septet == _ESCAPE:
        return " "
    return _FROM_SEPTETS[septet]


# -- reassembly -------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Assembled(Generic[T]):
    """A message given out, and the tags of every part that carried it (duplicates
    included): the PDUs to acknowledge once it is stored."""

    message: InboundText
    tags: tuple[T, ...]


@dataclass(slots=True)
class _Pending(Generic[T]):
    deadline: float
    parts: dict[int, MoPart] = field(default_factory=dict)  # by part number
    tags: list[T] = field(default_factory=list)


class Reassembler(Generic[T]):
    """Parts in, whole messages out; each part carries a tag the caller gets back with
    its message (the connector's: the PDU to answer).

    A message whose parts are not all in within `timeout` seconds of its first is
    given out with the parts that came, in order, marked incomplete. At most
    `capacity` messages wait at once: a part of one more gives out the oldest waiting
    as incomplete, so a flood of first parts cannot take all memory. A part that
    came already (the same number) adds its tag and nothing else. `clock` is
    monotonic seconds; nothing here reads the time otherwise.
    """

    def __init__(self, timeout: float, capacity: int, clock: Callable[[], float]) -> None:
        if timeout <= 0 or capacity < 1:
            raise ValueError("a reassembly timeout above 0 and room for one message at least")
        self._timeout = timeout
        self._capacity = capacity
        self._clock = clock
        # First part's arrival order, which is deadline order (one timeout for all).
        self._pending: OrderedDict[PartKey, _Pending[T]] = OrderedDict()

    def __len__(self) -> int:
        """Messages waiting for parts."""
        return len(self._pending)

    def add(self, part: MoPart, tag: T) -> list[Assembled[T]]:
        """Take a part; the messages it finishes, and any given out incomplete meanwhile
        (their time is up, or this part's message needed the room)."""
        out = self.expire()
        key = part.key
        if key is None or part.concat is None:
            out.append(Assembled(_message([part], complete=True), (tag,)))
            return out
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self._capacity:
                out.append(_give_out(self._pending.popitem(last=False)[1]))
            pending = self._pending[key] = _Pending(self._clock() + self._timeout)
        pending.tags.append(tag)
        pending.parts.setdefault(part.concat.seq, part)
        if len(pending.parts) == part.concat.total:
            del self._pending[key]
            out.append(_give_out(pending))
        return out

    def expire(self) -> list[Assembled[T]]:
        """The messages whose time is up, incomplete, oldest first."""
        now = self._clock()
        out: list[Assembled[T]] = []
        while self._pending:
            key, first = next(iter(self._pending.items()))
            if first.deadline > now:
                break
            del self._pending[key]
            out.append(_give_out(first))
        return out

    def flush(self) -> list[Assembled[T]]:
        """Every message still waiting, incomplete (the connector is closing)."""
        out = [_give_out(pending) for pending in self._pending.values()]
        self._pending.clear()
        return out

    def next_deadline(self) -> float | None:
        """When the oldest waiting message's time is up (clock seconds); None: none waits."""
        for pending in self._pending.values():
            return pending.deadline
        return None


def _give_out(pending: _Pending[T]) -> Assembled[T]:
    parts = [pending.parts[seq] for seq in sorted(pending.parts)]
    first = parts[0].concat
    complete = first is not None and len(parts) == first.total
    return Assembled(_message(parts, complete), tuple(pending.tags))


def _message(parts: Sequence[MoPart], complete: bool) -> InboundText:
    """The parts' texts in order; decoded together when they can be (one alphabet,
    whole UCS-2 units), so a character cut across two parts is read whole."""
    first = parts[0]
    coding = first.data_coding
    joinable = all(p.data_coding == coding for p in parts) and (
        codec(coding) != _UTF16 or all(len(p.data) % 2 == 0 for p in parts)
    )
    if joinable:
        text = decode_text(b"".join(p.data for p in parts), coding)
    else:
        text = "".join(p.text for p in parts)
    return InboundText(
        first.sender, first.recipient, text, parts=len(parts), incomplete=not complete
    )
