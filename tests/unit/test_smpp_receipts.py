"""Delivery receipts as SMSCs write them: text, TLVs, both; states to statuses; ids."""

from __future__ import annotations

import pytest

from batgate.channels.smpp.pdu import Command, DataSm, ShortMessage, Tag, Tlv
from batgate.channels.smpp.receipts import (
    IdSpelling,
    MessageState,
    Receipt,
    canonical,
    channel_status,
    read_receipt,
)
from batgate.domain.status import ChannelStatus

D, U = MessageState.DELIVERED, MessageState.UNDELIVERABLE


def deliver(text: str = "", esm_class: int = 0x04, *tlvs: Tlv) -> ShortMessage:
    return ShortMessage(
        Command.DELIVER_SM,
        source_addr="380501234567",
        destination_addr="Shop",
        short_message=text.encode("latin-1"),
        esm_class=esm_class,
        tlvs=tlvs,
    )


ID_TLV = Tlv.cstring(Tag.RECEIPTED_MESSAGE_ID, "7f3a")
STATE_TLV = Tlv.integer(Tag.MESSAGE_STATE, 2, 1)
CLASSIC = (
    "id:0000012345 sub:001 dlvrd:001 submit date:2412061530 done date:2412061531 "
    "stat:DELIVRD err:000 text:Order #1001"
)

# (id, pdu, the receipt read from it)
CASES: list[tuple[str, ShortMessage | DataSm, Receipt | None]] = [
    ("classic text, 10-digit dates", deliver(CLASSIC), Receipt("0000012345", D, "000")),
    (
        "12-digit dates",
        deliver(
            "id:99 sub:001 dlvrd:000 submit date:241206153000 done date:241206153107 "
            "stat:UNDELIV err:034 text:"
        ),
        Receipt("99", U, "034"),
    ),
    ("hex id", deliver("id:1A2B3C stat:DELIVRD err:000"), Receipt("1A2B3C", D, "000")),
    (
        "upper case keys",
        deliver("ID:5 STAT:EXPIRED ERR:1"),
        Receipt("5", MessageState.EXPIRED, "1"),
    ),
    (
        "Text: with a capital",
        deliver("id:6 stat:REJECTD err:0 Text:stat:DELIVRD"),
        Receipt("6", MessageState.REJECTED, "0"),
    ),
    (
        "the message text is not read",
        deliver("id:7 stat:ENROUTE err:0 text:id:8 stat:DELIVRD"),
        Receipt("7", MessageState.ENROUTE, "0"),
    ),
    ("full words", deliver("id:8 stat:DELIVERED"), Receipt("8", D, None)),
    ("unknown stat word", deliver("id:9 stat:WHATEVER"), Receipt("9", MessageState.UNKNOWN, None)),
    ("no stat", deliver("id:10"), Receipt("10", MessageState.UNKNOWN, None)),
    ("TLVs only", deliver("", 0x04, ID_TLV, STATE_TLV), Receipt("7f3a", D, None)),
    (
        "TLVs win over the text",
        deliver("id:111 stat:UNDELIV err:1", 0x04, ID_TLV, STATE_TLV),
        Receipt("7f3a", D, "1"),
    ),
    (
        "TLV id, text state",
        deliver("id:111 stat:UNDELIV err:1", 0x04, ID_TLV),
        Receipt("7f3a", U, "1"),
    ),
    (
        "a state TLV out of range falls back to the text",
        deliver("id:1 stat:DELIVRD", 0x04, Tlv.integer(Tag.MESSAGE_STATE, 99, 1)),
        Receipt("1", D, None),
    ),
    (
        "intermediate notification",
        deliver("id:12 stat:ENROUTE", 0x20),
        Receipt("12", MessageState.ENROUTE, None),
    ),
    (
        "receipt TLV without the esm_class bit",
        deliver("", 0x00, ID_TLV, STATE_TLV),
        Receipt("7f3a", D, None),
    ),
    ("a mobile-originated message", deliver("id:1 stat:DELIVRD", 0x00), None),
    ("a receipt without an id", deliver("stat:DELIVRD err:000"), None),
    (
        "a bad date is skipped",
        deliver("id:13 submit date:24-12-06 stat:DELIVRD"),
        Receipt("13", D, None),
    ),
    (
        "data_sm with TLVs",
        DataSm(
            "380501234567",
            "Shop",
            esm_class=0x04,
            tlvs=(ID_TLV, Tlv.integer(Tag.MESSAGE_STATE, 5, 1)),
        ),
        Receipt("7f3a", U, None),
    ),
    (
        "data_sm with the text in message_payload",
        DataSm(
            "380501234567",
            "Shop",
            esm_class=0x04,
            tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"id:77 stat:DELETED err:0"),),
        ),
        Receipt("77", MessageState.DELETED, "0"),
    ),
]


@pytest.mark.parametrize(("pdu", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_read_receipt(pdu: ShortMessage | DataSm, expected: Receipt | None) -> None:
    assert read_receipt(pdu) == expected


# (state, unknown_status setting, channel status)
STATES = [
    (MessageState.DELIVERED, "processing", ChannelStatus.DELIVERED),
    (MessageState.UNDELIVERABLE, "processing", ChannelStatus.UNDELIVERABLE),
    (MessageState.REJECTED, "processing", ChannelStatus.UNDELIVERABLE),
    (MessageState.EXPIRED, "processing", ChannelStatus.UNDELIVERABLE),
    (MessageState.DELETED, "processing", ChannelStatus.UNDELIVERABLE),
    (MessageState.ENROUTE, "delivered", None),
    (MessageState.ACCEPTED, "undeliverable", None),
    (MessageState.UNKNOWN, "processing", None),
    (MessageState.UNKNOWN, "delivered", ChannelStatus.DELIVERED),
    (MessageState.UNKNOWN, "undeliverable", ChannelStatus.UNDELIVERABLE),
]


@pytest.mark.parametrize(("state", "unknown", "expected"), STATES)
def test_states_map_to_statuses(
    state: MessageState, unknown: str, expected: ChannelStatus | None
) -> None:
    assert channel_status(state, unknown) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "key"),
    [("0000012345", "12345"), ("ABCdef", "abcdef"), ("000", "0"), (" 42 ", "42"), ("", "")],
)
def test_canonical(raw: str, key: str) -> None:
    assert canonical(raw) == key


# (mode, submit_sm_resp id, receipt id, do they meet?)
SPELLINGS = [
    ("same", "12345", "0000012345", True),
    ("same", "a1B2", "A1b2", True),
    ("same", "3039", "12345", False),
    ("hex_to_decimal", "3039", "12345", True),
    ("hex_to_decimal", "0x", "0x", True),  # not hex at all: compared as it is
    ("decimal_to_hex", "12345", "3039", True),
    ("decimal_to_hex", "12345", "12345", False),
    ("auto", "3039", "12345", True),
    ("auto", "12345", "3039", True),
    ("auto", "1a2b", "6699", True),
    ("auto", "6699", "1A2B", True),
    ("auto", "00012345", "12345", True),
    ("auto", "msg-77", "msg-77", True),
    ("auto", "12345", "12346", False),
]


@pytest.mark.parametrize(("mode", "resp", "receipt", "meet"), SPELLINGS)
def test_receipt_ids_meet_their_parts(mode: str, resp: str, receipt: str, meet: bool) -> None:
    spelling = IdSpelling(mode)  # type: ignore[arg-type]
    part = spelling.part_key(resp)
    # The part stored first, the receipt looking it up; and the other way round.
    assert (part in spelling.lookups(receipt)) is meet
    assert (spelling.receipt_key(receipt) in spelling.part_lookups(part)) is meet
