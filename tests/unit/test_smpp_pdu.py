"""The SMPP 3.4 codec: known bytes, round trips (tables and hypothesis), malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batgate.channels.smpp.pdu import (
    Bind,
    BindResp,
    Command,
    DataSm,
    Empty,
    MessageIdResp,
    Pdu,
    PduError,
    ShortMessage,
    Status,
    Tag,
    Tlv,
    decode,
    encode,
    find_tlv,
    frame_length,
    status_name,
)

# (id, pdu, its bytes on the wire as hex) — written from the SMPP 3.4 layouts by hand.
KNOWN: list[tuple[str, Pdu, str]] = [
    ("enquire_link", Pdu(Empty(Command.ENQUIRE_LINK), 1), "00000010 00000015 00000000 00000001"),
    (
        "enquire_link_resp",
        Pdu(Empty(Command.ENQUIRE_LINK_RESP), 7),
        "00000010 80000015 00000000 00000007",
    ),
    ("unbind", Pdu(Empty(Command.UNBIND), 2), "00000010 00000006 00000000 00000002"),
    (
        "generic_nack",
        Pdu(Empty(Command.GENERIC_NACK), 9, Status.ESME_RINVCMDID),
        "00000010 80000000 00000003 00000009",
    ),
    (
        "bind_transceiver",
        Pdu(Bind(Command.BIND_TRANSCEIVER, "esme", "pw"), 1),
        "0000001d 00000009 00000000 00000001 65736d6500 707700 00 34 00 00 00",
    ),
    (
        "bind_transmitter_resp",
        Pdu(BindResp(Command.BIND_TRANSMITTER_RESP, "SMSC"), 1),
        "00000015 80000002 00000000 00000001 534d534300",
    ),
    (
        "submit_sm_resp",
        Pdu(MessageIdResp(Command.SUBMIT_SM_RESP, "abc123"), 5),
        "00000017 80000004 00000000 00000005 61626331323300",
    ),
    (
        "submit_sm",
        Pdu(
            ShortMessage(
                Command.SUBMIT_SM,
                source_addr="Shop",
                destination_addr="380501234567",
                short_message=b"Hi",
                source_addr_ton=5,
                dest_addr_ton=1,
                dest_addr_npi=1,
                registered_delivery=1,
            ),
            3,
        ),
        "00000033 00000004 00000000 00000003"
        " 00 05 00 53686f7000 01 01 33383035303132333435363700 00 00 00 00 00 01 00 00 00"
        " 02 4869",
    ),
    (
        "deliver_sm receipt TLVs",
        Pdu(
            ShortMessage(
                Command.DELIVER_SM,
                source_addr="380501234567",
                destination_addr="Shop",
                esm_class=0x04,
                tlvs=(
                    Tlv.cstring(Tag.RECEIPTED_MESSAGE_ID, "ab"),
                    Tlv.integer(Tag.MESSAGE_STATE, 2, 1),
                ),
            ),
            4,
        ),
        "0000003d 00000005 00000000 00000004"
        " 00 00 00 33383035303132333435363700 00 00 53686f7000 04 00 00 00 00 00 00 00 00 00"
        " 001e 0003 616200 0427 0001 02",
    ),
]


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(("pdu", "wire"), [(p, w) for _, p, w in KNOWN], ids=[k[0] for k in KNOWN])
def test_known_bytes(pdu: Pdu, wire: str) -> None:
    assert encode(pdu) == _hex(wire)
    assert decode(_hex(wire)) == pdu


# (id, bytes, status the decoder asks to answer with)
MALFORMED: list[tuple[str, str, int]] = [
    ("shorter than a header", "00000010 00000015", Status.ESME_RINVCMDLEN),
    ("length disagrees", "00000011 00000015 00000000 00000001", Status.ESME_RINVCMDLEN),
    ("unknown command", "00000010 00000099 00000000 00000001", Status.ESME_RINVCMDID),
    ("no NUL in message_id", "00000013 80000004 00000000 00000001 616263", Status.ESME_RINVCMDLEN),
    (
        "TLV runs past the end",
        "00000018 80000004 00000000 00000001 00 001e 0009 6162 00",
        Status.ESME_RINVPARLEN,
    ),
    (
        "TLV header cut short",
        "00000014 80000004 00000000 00000001 00 001e 00",
        Status.ESME_RINVOPTPARSTREAM,
    ),
    (
        "short_message longer than the body",
        "00000020 00000005 00000000 00000001 00 00 00 3100 00 00 3200 00 00 00 00 00 00 00 00 00 05"
        " 41",
        Status.ESME_RINVCMDLEN,
    ),
]


@pytest.mark.parametrize(
    ("wire", "status"), [(w, s) for _, w, s in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_pdus_are_refused_with_a_status(wire: str, status: int) -> None:
    with pytest.raises(PduError) as caught:
        decode(_hex(wire))
    assert caught.value.status == status


def test_an_error_response_may_leave_its_body_out() -> None:
    pdu = decode(_hex("00000010 80000004 00000058 00000003"))
    assert pdu.status == Status.ESME_RTHROTTLED
    assert pdu.body == MessageIdResp(Command.SUBMIT_SM_RESP)
    bind = decode(_hex("00000010 80000009 0000000e 00000001"))
    assert bind.body == BindResp(Command.BIND_TRANSCEIVER_RESP)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("00000010", True),
        ("0000000f", False),
        ("00011170", True),
        ("00011171ff", False),
        ("7fffffff", False),
    ],
)
def test_frame_length_bounds(header: str, ok: bool) -> None:
    if ok:
        assert frame_length(_hex(header)) == int(header[:8], 16)
    else:
        with pytest.raises(PduError):
            frame_length(_hex(header))


@pytest.mark.parametrize(
    ("value", "limit"),
    [("x" * 16, "system_id"), ("p" * 9, "password")],
)
def test_encoding_refuses_fields_too_long(value: str, limit: str) -> None:
    fields = {"system_id": "esme", "password": "pw", limit: value}
    with pytest.raises(PduError, match=limit):
        encode(Pdu(Bind(Command.BIND_TRANSCEIVER, **fields), 1))


def test_status_names() -> None:
    assert status_name(0x58) == "ESME_RTHROTTLED"
    assert status_name(0x401) == "0x00000401"


def test_find_tlv_reads_integers_and_strings() -> None:
    tlvs = (Tlv.cstring(Tag.RECEIPTED_MESSAGE_ID, "0A1B"), Tlv.integer(Tag.MESSAGE_STATE, 5, 1))
    found_id, found_state = (
        find_tlv(tlvs, Tag.RECEIPTED_MESSAGE_ID),
        find_tlv(tlvs, Tag.MESSAGE_STATE),
    )
    assert found_id is not None and found_id.as_str() == "0A1B"
    assert found_state is not None and found_state.as_int() == 5
    assert find_tlv(tlvs, Tag.SAR_MSG_REF_NUM) is None


# -- hypothesis: any PDU batgate can build decodes back to itself --------------------------

_octet = st.integers(0, 255)
_sequence = st.integers(1, 0x7FFFFFFF)
_status = st.sampled_from([0, *[s.value for s in Status], 0x400, 0x4FF])


def _text(limit: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=limit - 1)


_tlvs = st.lists(st.builds(Tlv, st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=4).map(
    tuple
)

_bodies = st.one_of(
    st.builds(
        Bind,
        st.sampled_from(
            [Command.BIND_TRANSMITTER, Command.BIND_RECEIVER, Command.BIND_TRANSCEIVER]
        ),
        _text(16),
        _text(9),
        _text(13),
        _octet,
        _octet,
        _octet,
        _text(41),
    ),
    st.builds(
        BindResp,
        st.sampled_from(
            [
                Command.BIND_TRANSMITTER_RESP,
                Command.BIND_RECEIVER_RESP,
                Command.BIND_TRANSCEIVER_RESP,
            ]
        ),
        _text(16).filter(bool),
        _tlvs,
    ),
    st.builds(
        ShortMessage,
        st.sampled_from([Command.SUBMIT_SM, Command.DELIVER_SM]),
        _text(21),
        _text(21),
        st.binary(max_size=254),
        _text(6),
        _octet,
        _octet,
        _octet,
        _octet,
        _octet,
        _octet,
        _octet,
        _text(17),
        _text(17),
        _octet,
        _octet,
        _octet,
        _octet,
        _tlvs,
    ),
    st.builds(
        DataSm,
        _text(65),
        _text(65),
        _text(6),
        _octet,
        _octet,
        _octet,
        _octet,
        _octet,
        _octet,
        _octet,
        _tlvs,
    ),
    st.builds(
        MessageIdResp,
        st.sampled_from([Command.SUBMIT_SM_RESP, Command.DELIVER_SM_RESP, Command.DATA_SM_RESP]),
        _text(65).filter(bool),
        _tlvs,
    ),
    st.builds(
        Empty,
        st.sampled_from(
            [
                Command.ENQUIRE_LINK,
                Command.ENQUIRE_LINK_RESP,
                Command.UNBIND,
                Command.UNBIND_RESP,
                Command.GENERIC_NACK,
            ]
        ),
    ),
)


@given(st.builds(Pdu, _bodies, _sequence, _status))
def test_any_pdu_round_trips(pdu: Pdu) -> None:
    wire = encode(pdu)
    assert int.from_bytes(wire[:4], "big") == len(wire)
    assert decode(wire) == pdu
    assert encode(decode(wire)) == wire


@given(st.binary(min_size=16, max_size=300))
def test_random_bytes_decode_or_raise_pduerror(data: bytes) -> None:
    framed = len(data).to_bytes(4, "big") + data[4:]
    try:
        pdu = decode(framed)
    except PduError:
        return
    assert decode(encode(pdu)) == pdu
