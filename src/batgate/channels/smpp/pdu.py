"""SMPP 3.4 PDUs: the wire format, both ways. Pure: bytes in, objects out, and back.

A PDU is a 16-byte header (length, command id, command status, sequence number)
and a body. The bodies a gateway needs are modelled as small dataclasses:

- :class:`Bind` / :class:`BindResp` — bind_transmitter, bind_receiver, bind_transceiver;
- :class:`ShortMessage` — submit_sm and deliver_sm, which share one body;
- :class:`DataSm` — data_sm (a receipt may come as one);
- :class:`MessageIdResp` — submit_sm_resp, deliver_sm_resp, data_sm_resp;
- :class:`Empty` — enquire_link, unbind, generic_nack and their responses.

Optional parameters (TLVs) are kept as :class:`Tlv` tuples in the order they came,
so a PDU decodes and encodes back to the same bytes. Anything malformed raises
:class:`PduError` carrying the command status to answer it with (SMPP 3.4 §5.1.3).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

HEADER = struct.Struct(">IIII")
HEADER_SIZE = HEADER.size
# Larger than any PDU a gateway sends or gets (a 64 KiB message_payload and then some);
# a length beyond this is a framing error, not a PDU to buffer.
MAX_PDU_SIZE = 70_000
RESPONSE_BIT = 0x80000000
INTERFACE_VERSION = 0x34


class Command(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103

    @property
    def is_response(self) -> bool:
        return bool(self & RESPONSE_BIT)

    @property
    def response(self) -> Command:
        """The command answering this one (generic_nack answers itself)."""
        return Command(self | RESPONSE_BIT)


class Status(IntEnum):
    """Command statuses of SMPP 3.4 (table 5-2). Carriers add their own (0x400–0x4FF),
    so a status on the wire is an int: see :func:`status_name`."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RINVPRTFLG = 0x06
    ESME_RINVREGDLVFLG = 0x07
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RCANCELFAIL = 0x11
    ESME_RREPLACEFAIL = 0x13
    ESME_RMSGQFUL = 0x14
    ESME_RINVSERTYP = 0x15
    ESME_RINVNUMDESTS = 0x33
    ESME_RINVDLNAME = 0x34
    ESME_RINVDESTFLAG = 0x40
    ESME_RINVSUBREP = 0x42
    ESME_RINVESMCLASS = 0x43
    ESME_RCNTSUBDL = 0x44
    ESME_RSUBMITFAIL = 0x45
    ESME_RINVSRCTON = 0x48
    ESME_RINVSRCNPI = 0x49
    ESME_RINVDSTTON = 0x50
    ESME_RINVDSTNPI = 0x51
    ESME_RINVSYSTYP = 0x53
    ESME_RINVREPFLAG = 0x54
    ESME_RINVNUMMSGS = 0x55
    ESME_RTHROTTLED = 0x58
    ESME_RINVSCHED = 0x61
    ESME_RINVEXPIRY = 0x62
    ESME_RINVDFTMSGID = 0x63
    ESME_RX_T_APPN = 0x64
    ESME_RX_P_APPN = 0x65
    ESME_RX_R_APPN = 0x66
    ESME_RQUERYFAIL = 0x67
    ESME_RINVOPTPARSTREAM = 0xC0
    ESME_ROPTPARNOTALLWD = 0xC1
    ESME_RINVPARLEN = 0xC2
    ESME_RMISSINGOPTPARAM = 0xC3
    ESME_RINVOPTPARAMVAL = 0xC4
    ESME_RDELIVERYFAILURE = 0xFE
    ESME_RUNKNOWNERR = 0xFF


_STATUS_NAMES = {s.value: s.name for s in Status}


def status_name(status: int) -> str:
    """`ESME_RTHROTTLED`, or `0x00000401` for a status SMPP 3.4 does not name."""
    return _STATUS_NAMES.get(status) or f"0x{status:08x}"


class Tag(IntEnum):
    """The optional parameters batgate reads or writes (SMPP 3.4 §5.3.2)."""

    DEST_ADDR_SUBUNIT = 0x0005
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    PAYLOAD_TYPE = 0x0019
    MESSAGE_PAYLOAD = 0x0424
    RECEIPTED_MESSAGE_ID = 0x001E
    MESSAGE_STATE = 0x0427
    NETWORK_ERROR_CODE = 0x0423
    DELIVERY_FAILURE_REASON = 0x0425
    USER_MESSAGE_REFERENCE = 0x0204
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes

    @classmethod
    def integer(cls, tag: int, value: int, size: int) -> Tlv:
        return cls(tag, value.to_bytes(size, "big"))

    @classmethod
    def cstring(cls, tag: int, value: str) -> Tlv:
        return cls(tag, value.encode("latin-1") + b"\x00")

    def as_int(self) -> int:
        return int.from_bytes(self.value, "big")

    def as_str(self) -> str:
        """A C-octet string's text (the terminating NUL, when present, dropped)."""
        return self.value.split(b"\x00", 1)[0].decode("latin-1")


def find_tlv(tlvs: Iterable[Tlv], tag: int) -> Tlv | None:
    for tlv in tlvs:
        if tlv.tag == tag:
            return tlv
    return None


class PduError(Exception):
    """A PDU that cannot be decoded or encoded; `status` is the SMPP error to answer with."""

    def __init__(self, message: str, status: int = Status.ESME_RINVCMDLEN) -> None:
        super().__init__(message)
        self.status = status


# -- bodies -------------------------------------------------------------------------

_BINDS = (Command.BIND_TRANSMITTER, Command.BIND_RECEIVER, Command.BIND_TRANSCEIVER)
_BIND_RESPS = tuple(c.response for c in _BINDS)
_SHORT_MESSAGES = (Command.SUBMIT_SM, Command.DELIVER_SM)
_MESSAGE_ID_RESPS = (Command.SUBMIT_SM_RESP, Command.DELIVER_SM_RESP, Command.DATA_SM_RESP)
_EMPTIES = (
    Command.ENQUIRE_LINK,
    Command.ENQUIRE_LINK_RESP,
    Command.UNBIND,
    Command.UNBIND_RESP,
    Command.GENERIC_NACK,
)


@dataclass(frozen=True, slots=True)
class Bind:
    command: Command
    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(frozen=True, slots=True)
class BindResp:
    command: Command
    system_id: str = ""
    tlvs: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class ShortMessage:
    """submit_sm and deliver_sm (SMPP 3.4 §4.4.1, §4.6.1): the same body."""

    command: Command
    source_addr: str
    destination_addr: str
    short_message: bytes = b""
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    tlvs: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class DataSm:
    """data_sm (SMPP 3.4 §4.7.1): the message, if any, is in TLVs."""

    source_addr: str
    destination_addr: str
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0
    tlvs: tuple[Tlv, ...] = ()

    command = Command.DATA_SM


@dataclass(frozen=True, slots=True)
class MessageIdResp:
    """submit_sm_resp, deliver_sm_resp and data_sm_resp: a message id (and TLVs)."""

    command: Command
    message_id: str = ""
    tlvs: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class Empty:
    """A PDU with no body: enquire_link, unbind, generic_nack, their responses."""

    command: Command


Body = Bind | BindResp | ShortMessage | DataSm | MessageIdResp | Empty


@dataclass(frozen=True, slots=True)
class Pdu:
    body: Body
    sequence: int
    status: int = 0
    command: Command = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", self.body.command)


# -- encoding -----------------------------------------------------------------------

# Maximum lengths of C-octet strings, the NUL included (SMPP 3.4 §4).
_MAX = {
    "system_id": 16,
    "password": 9,
    "system_type": 13,
    "address_range": 41,
    "service_type": 6,
    "addr": 21,
    "data_sm_addr": 65,
    "time": 17,
    "message_id": 65,
}


def _cstr(value: str, limit: int, name: str) -> bytes:
    raw = value.encode("latin-1")
    if b"\x00" in raw or len(raw) >= limit:
        raise PduError(f"{name} {value!r}: at most {limit - 1} characters, no NUL")
    return raw + b"\x00"


def _tlvs(tlvs: Iterable[Tlv]) -> bytes:
    out = bytearray()
    for tlv in tlvs:
        if not 0 <= tlv.tag <= 0xFFFF or len(tlv.value) > 0xFFFF:
            raise PduError(f"TLV 0x{tlv.tag:04x}: tag or length out of range")
        out += struct.pack(">HH", tlv.tag, len(tlv.value)) + tlv.value
    return bytes(out)


def _encode_bind(b: Bind) -> bytes:
    return b"".join(
        (
            _cstr(b.system_id, _MAX["system_id"], "system_id"),
            _cstr(b.password, _MAX["password"], "password"),
            _cstr(b.system_type, _MAX["system_type"], "system_type"),
            bytes((b.interface_version, b.addr_ton, b.addr_npi)),
            _cstr(b.address_range, _MAX["address_range"], "address_range"),
        )
    )


def _encode_addressing(m: ShortMessage | DataSm, addr: int) -> bytes:
    """service_type, then source and destination (TON, NPI, address): the head that
    submit_sm, deliver_sm and data_sm share."""
    return b"".join(
        (
            _cstr(m.service_type, _MAX["service_type"], "service_type"),
            bytes((m.source_addr_ton, m.source_addr_npi)),
            _cstr(m.source_addr, addr, "source_addr"),
            bytes((m.dest_addr_ton, m.dest_addr_npi)),
            _cstr(m.destination_addr, addr, "destination_addr"),
        )
    )


def _encode_short_message(m: ShortMessage) -> bytes:
    if len(m.short_message) > 254:
        raise PduError(f"short_message: {len(m.short_message)} octets, at most 254")
    addr = _MAX["addr"]
    return b"".join(
        (
            _encode_addressing(m, addr),
            bytes((m.esm_class, m.protocol_id, m.priority_flag)),
            _cstr(m.schedule_delivery_time, _MAX["time"], "schedule_delivery_time"),
            _cstr(m.validity_period, _MAX["time"], "validity_period"),
            bytes(
                (
                    m.registered_delivery,
                    m.replace_if_present_flag,
                    m.data_coding,
                    m.sm_default_msg_id,
                    len(m.short_message),
                )
            ),
            m.short_message,
            _tlvs(m.tlvs),
        )
    )


def _encode_data_sm(d: DataSm) -> bytes:
    addr = _MAX["data_sm_addr"]
    return b"".join(
        (
            _encode_addressing(d, addr),
            bytes((d.esm_class, d.registered_delivery, d.data_coding)),
            _tlvs(d.tlvs),
        )
    )


def _encode_body(body: Body) -> bytes:
    if isinstance(body, ShortMessage):
        return _encode_short_message(body)
    if isinstance(body, MessageIdResp):
        return _cstr(body.message_id, _MAX["message_id"], "message_id") + _tlvs(body.tlvs)
    if isinstance(body, Empty):
        return b""
    if isinstance(body, Bind):
        return _encode_bind(body)
    if isinstance(body, BindResp):
        return _cstr(body.system_id, _MAX["system_id"], "system_id") + _tlvs(body.tlvs)
    return _encode_data_sm(body)


def encode(pdu: Pdu) -> bytes:
    """The PDU's bytes on the wire, header included."""
    body = _encode_body(pdu.body)
    return HEADER.pack(HEADER_SIZE + len(body), pdu.command, pdu.status, pdu.sequence) + body


# -- decoding -----------------------------------------------------------------------


class _Reader:
    """Reads a body field by field; running past its end is a PduError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def cstr(self, limit: int, name: str) -> str:
        end = self.data.find(b"\x00", self.pos, self.pos + limit)
        if end < 0:
            raise PduError(f"{name}: no NUL within {limit} octets")
        value = self.data[self.pos : end].decode("latin-1")
        self.pos = end + 1
        return value

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise PduError("body ends early")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def octets(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise PduError("body ends early")
        value = self.data[self.pos : end]
        self.pos = end
        return value

    def tlvs(self) -> tuple[Tlv, ...]:
        data, pos, end = self.data, self.pos, len(self.data)
        found: list[Tlv] = []
        while pos < end:
            if pos + 4 > end:
                raise PduError("a TLV header is cut short", Status.ESME_RINVOPTPARSTREAM)
            tag, size = struct.unpack_from(">HH", data, pos)
            pos += 4
            if pos + size > end:
                raise PduError(f"TLV 0x{tag:04x} runs past the PDU", Status.ESME_RINVPARLEN)
            found.append(Tlv(tag, data[pos : pos + size]))
            pos += size
        self.pos = pos
        return tuple(found)


def _decode_bind(command: Command, r: _Reader) -> Bind:
    return Bind(
        command,
        system_id=r.cstr(_MAX["system_id"], "system_id"),
        password=r.cstr(_MAX["password"], "password"),
        system_type=r.cstr(_MAX["system_type"], "system_type"),
        interface_version=r.byte(),
        addr_ton=r.byte(),
        addr_npi=r.byte(),
        address_range=r.cstr(_MAX["address_range"], "address_range"),
    )


@dataclass(frozen=True, slots=True)
class _Addressing:
    service_type: str
    source_ton: int
    source_npi: int
    source: str
    dest_ton: int
    dest_npi: int
    destination: str

    @classmethod
    def read(cls, r: _Reader, addr: int) -> _Addressing:
        return cls(
            service_type=r.cstr(_MAX["service_type"], "service_type"),
            source_ton=r.byte(),
            source_npi=r.byte(),
            source=r.cstr(addr, "source_addr"),
            dest_ton=r.byte(),
            dest_npi=r.byte(),
            destination=r.cstr(addr, "destination_addr"),
        )


def _decode_short_message(command: Command, r: _Reader) -> ShortMessage:
    a = _Addressing.read(r, _MAX["addr"])
    esm_class, protocol_id, priority = r.byte(), r.byte(), r.byte()
    schedule = r.cstr(_MAX["time"], "schedule_delivery_time")
    validity = r.cstr(_MAX["time"], "validity_period")
    registered, replace, coding, default_id, length = (r.byte() for _ in range(5))
    text = r.octets(length)
    return ShortMessage(
        command,
        source_addr=a.source,
        destination_addr=a.destination,
        short_message=text,
        service_type=a.service_type,
        source_addr_ton=a.source_ton,
        source_addr_npi=a.source_npi,
        dest_addr_ton=a.dest_ton,
        dest_addr_npi=a.dest_npi,
        esm_class=esm_class,
        protocol_id=protocol_id,
        priority_flag=priority,
        schedule_delivery_time=schedule,
        validity_period=validity,
        registered_delivery=registered,
        replace_if_present_flag=replace,
        data_coding=coding,
        sm_default_msg_id=default_id,
        tlvs=r.tlvs(),
    )


def _decode_data_sm(r: _Reader) -> DataSm:
    a = _Addressing.read(r, _MAX["data_sm_addr"])
    esm_class, registered, coding = r.byte(), r.byte(), r.byte()
    return DataSm(
        source_addr=a.source,
        destination_addr=a.destination,
        service_type=a.service_type,
        source_addr_ton=a.source_ton,
        source_addr_npi=a.source_npi,
        dest_addr_ton=a.dest_ton,
        dest_addr_npi=a.dest_npi,
        esm_class=esm_class,
        registered_delivery=registered,
        data_coding=coding,
        tlvs=r.tlvs(),
    )


def _decode_body(command: Command, status: int, body: bytes) -> Body:
    if command in _EMPTIES:
        return Empty(command)
    if command.is_response and status != 0 and not body:
        # An error response may leave its body out (SMPP 3.4 §3.3).
        return MessageIdResp(command) if command in _MESSAGE_ID_RESPS else BindResp(command)
    r = _Reader(body)
    decoded: Body
    if command in _SHORT_MESSAGES:
        decoded = _decode_short_message(command, r)
    elif command in _MESSAGE_ID_RESPS:
        decoded = MessageIdResp(command, r.cstr(_MAX["message_id"], "message_id"), r.tlvs())
    elif command in _BINDS:
        decoded = _decode_bind(command, r)
    elif command in _BIND_RESPS:
        decoded = BindResp(command, r.cstr(_MAX["system_id"], "system_id"), r.tlvs())
    else:
        decoded = _decode_data_sm(r)
    if r.pos != len(body):
        raise PduError(f"{command.name}: {len(body) - r.pos} octets after the body")
    return decoded


def frame_length(header: bytes | bytearray) -> int:
    """The command_length of a PDU from its first 4+ octets; PduError if impossible."""
    length = int.from_bytes(header[:4], "big")
    if not HEADER_SIZE <= length <= MAX_PDU_SIZE:
        raise PduError(f"command_length {length} is out of range")
    return length


def decode(frame: bytes) -> Pdu:
    """One whole PDU (exactly `command_length` octets) → :class:`Pdu`.

    Raises :class:`PduError` for a bad length, an unknown command (status
    ESME_RINVCMDID) or a malformed body.
    """
    if len(frame) < HEADER_SIZE:
        raise PduError(f"{len(frame)} octets is shorter than a header")
    length, command_id, status, sequence = HEADER.unpack_from(frame)
    if length != len(frame):
        raise PduError(f"command_length {length} but {len(frame)} octets")
    try:
        command = Command(command_id)
    except ValueError:
        raise PduError(f"unknown command 0x{command_id:08x}", Status.ESME_RINVCMDID) from None
    return Pdu(_decode_body(command, status, frame[HEADER_SIZE:]), sequence, status)
