"""Mobile-originated messages over SMPP: reading deliver_sm / data_sm into parts, and
putting the parts back together.

The PDUs are built with batgate's own PDU classes; their GSM-7 text is written with
the table the tests read out of the standard (smpp_support), not batgate's.
"""

from __future__ import annotations

import pytest

from batgate.channels.smpp.mo import (
    REPLACEMENT,
    Assembled,
    Concat,
    MoPart,
    Reassembler,
    address,
    decode_text,
    read_mo,
    split_udh,
)
from batgate.channels.smpp.pdu import Command, DataSm, ShortMessage, Tag, Tlv
from batgate.domain.inbound import InboundText
from smpp_support import EXTENSION, SEPTET_TO_CODE_POINT, UDHI

FFFD = REPLACEMENT
EMOJI = "\U0001f600"
PHONE = "380501234567"

_SEPTETS = {chr(c): bytes((i,)) for i, c in enumerate(SEPTET_TO_CODE_POINT) if c is not None}
_SEPTETS |= {c: bytes((0x1B, code)) for code, c in EXTENSION.items()}


def gsm(text: str) -> bytes:
    """GSM 03.38, one septet per octet (as SMPP carries it)."""
    return b"".join(_SEPTETS[c] for c in text)


def ucs2(text: str) -> bytes:
    return text.encode("utf-16-be")


def deliver(
    data: bytes = b"",
    coding: int = 0,
    esm_class: int = 0,
    *tlvs: Tlv,
    source: str = PHONE,
    source_ton: int = 1,
    destination: str = "1234",
    dest_ton: int = 3,
) -> ShortMessage:
    return ShortMessage(
        Command.DELIVER_SM,
        source_addr=source,
        destination_addr=destination,
        short_message=data,
        source_addr_ton=source_ton,
        dest_addr_ton=dest_ton,
        esm_class=esm_class,
        data_coding=coding,
        tlvs=tlvs,
    )


def udh8(ref: int, total: int, seq: int) -> bytes:
    return bytes((5, 0x00, 3, ref, total, seq))


def udh16(ref: int, total: int, seq: int) -> bytes:
    return bytes((6, 0x08, 4, ref >> 8, ref & 0xFF, total, seq))


def sar(ref: int, total: int, seq: int) -> tuple[Tlv, ...]:
    return (
        Tlv.integer(Tag.SAR_MSG_REF_NUM, ref, 2),
        Tlv.integer(Tag.SAR_TOTAL_SEGMENTS, total, 1),
        Tlv.integer(Tag.SAR_SEGMENT_SEQNUM, seq, 1),
    )


def payload(data: bytes) -> Tlv:
    return Tlv(Tag.MESSAGE_PAYLOAD, data)


# -- texts by data_coding ----------------------------------------------------------------

# (id, the PDU, its text)
TEXTS: list[tuple[str, ShortMessage | DataSm, str]] = [
    ("gsm7", deliver(gsm("Hello @ £5, ÄÖÜ Δ!")), "Hello @ £5, ÄÖÜ Δ!"),
    ("gsm7 extension table", deliver(gsm("{[€]}~|^\\\f")), "{[€]}~|^\\\f"),
    ("gsm7 newline and CR", deliver(gsm("a\nb\rc")), "a\nb\rc"),
    ("ia5 (1)", deliver(b"STOP please", 1), "STOP please"),
    ("latin-1 (3)", deliver("Grüße, ½ Preis".encode("latin-1"), 3), "Grüße, ½ Preis"),
    ("ucs2 (8)", deliver(ucs2("Привіт, світ"), 8), "Привіт, світ"),
    ("ucs2 surrogate pair", deliver(ucs2(f"ok {EMOJI}!"), 8), f"ok {EMOJI}!"),
    ("8-bit binary (4) as latin-1", deliver(b"\x00\x7f\x80\xff", 4), "\x00\x7f\x80\xff"),
    ("8-bit binary (2) as latin-1", deliver(b"\xc3\xa9", 2), "\xc3\xa9"),
    ("cyrillic (6)", deliver("Привет".encode("iso8859_5"), 6), "Привет"),
    ("class 1 default alphabet (0xF1)", deliver(gsm("Hi"), 0xF1), "Hi"),
    ("class 0 ucs2 (0x18)", deliver(ucs2("Ї"), 0x18), "Ї"),
    ("empty", deliver(b""), ""),
    # What no alphabet has is U+FFFD, never an exception.
    ("gsm7 octet above 0x7f", deliver(b"a\x80b"), f"a{FFFD}b"),
    ("gsm7 escape at the end", deliver(b"ab\x1b"), f"ab{FFFD}"),
    ("gsm7 escape, unknown extension", deliver(b"\x1b\x41"), "A"),  # the main table's
    ("ia5 above 0x7f", deliver(b"ok\xff", 1), f"ok{FFFD}"),
    ("ucs2 lone high surrogate", deliver(b"\xd8\x3d\x00A", 8), f"{FFFD}A"),
    ("ucs2 lone low surrogate", deliver(b"\xde\x00\x00A", 8), f"{FFFD}A"),
    ("ucs2 odd length", deliver(b"\x00A\x00", 8), f"A{FFFD}"),
    # Where the text is.
    (
        "message_payload when short_message is empty",
        deliver(b"", 0, 0, payload(gsm("long"))),
        "long",
    ),
    ("short_message wins over message_payload", deliver(gsm("sm"), 0, 0, payload(b"pl")), "sm"),
    (
        "data_sm: message_payload",
        DataSm(PHONE, "1234", source_addr_ton=1, data_coding=8, tlvs=(payload(ucs2("Так")),)),
        "Так",
    ),
    ("data_sm without a payload", DataSm(PHONE, "1234"), ""),
]


@pytest.mark.parametrize(("pdu", "text"), [c[1:] for c in TEXTS], ids=[c[0] for c in TEXTS])
def test_text_by_data_coding(pdu: ShortMessage | DataSm, text: str) -> None:
    part = read_mo(pdu)
    assert part.text == text
    assert part.concat is None


def test_every_gsm7_character_reads_back() -> None:
    every = "".join(_SEPTETS)
    assert decode_text(gsm(every), 0) == every


# -- parts ---------------------------------------------------------------------------------

# (id, the PDU, its place in its message, its text)
PARTS: list[tuple[str, ShortMessage | DataSm, Concat | None, str]] = [
    ("udh 8-bit", deliver(udh8(7, 3, 2) + gsm("two"), 0, UDHI), Concat(7, 3, 2), "two"),
    (
        "udh 16-bit",
        deliver(udh16(0x1234, 2, 1) + gsm("one"), 0, UDHI),
        Concat(0x1234, 2, 1),
        "one",
    ),
    (
        "udh ucs2 (text at an odd octet after a 16-bit header)",
        deliver(udh16(300, 2, 2) + ucs2("дві"), 8, UDHI),
        Concat(300, 2, 2),
        "дві",
    ),
    (
        "udh with a port element first",
        deliver(bytes((11, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0)) + udh8(9, 2, 1)[1:] + b"x", 4, UDHI),
        Concat(9, 2, 1),
        "x",
    ),
    (
        "udh without a concatenation element: one part, header off",
        deliver(bytes((6, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0)) + gsm("hi"), 0, UDHI),
        None,
        "hi",
    ),
    (
        "udh in message_payload",
        deliver(b"", 0, UDHI, payload(udh8(1, 2, 2) + gsm("pl"))),
        Concat(1, 2, 2),
        "pl",
    ),
    ("sar TLVs", deliver(gsm("s"), 0, 0, *sar(513, 4, 3)), Concat(513, 4, 3), "s"),
    (
        "sar TLVs on data_sm",
        DataSm(PHONE, "1234", source_addr_ton=1, tlvs=(*sar(5, 2, 2), payload(gsm("d")))),
        Concat(5, 2, 2),
        "d",
    ),
    ("sar missing its seqnum: one part", deliver(b"x", 1, 0, *sar(5, 2, 2)[:2]), None, "x"),
    ("udh bit without a header: empty", deliver(b"", 0, UDHI), None, ""),
    (
        "a header longer than the data",
        deliver(bytes((9, 0x00, 3, 1, 2, 1)), 0, UDHI),
        Concat(1, 2, 1),
        "",
    ),
    # Numbering that makes no sense is a message in one part: its text is kept.
    ("part 0", deliver(udh8(1, 2, 0) + b"z", 1, UDHI), None, "z"),
    ("part 3 of 2", deliver(udh8(1, 2, 3) + b"z", 1, UDHI), None, "z"),
    ("1 of 1", deliver(gsm("z"), 0, 0, *sar(1, 1, 1)), None, "z"),
]


@pytest.mark.parametrize(
    ("pdu", "concat", "text"), [c[1:] for c in PARTS], ids=[c[0] for c in PARTS]
)
def test_parts_are_numbered_and_their_header_taken_off(
    pdu: ShortMessage | DataSm, concat: Concat | None, text: str
) -> None:
    part = read_mo(pdu)
    assert part.concat == concat
    assert part.text == text
    if concat is not None:
        assert part.key == ("+" + PHONE, "1234", concat.ref, concat.total)


def test_a_header_cut_inside_an_element_keeps_what_came_before() -> None:
    assert split_udh(bytes((8, 0x00, 3, 4, 2, 1, 0x05, 9, 1)) + b"t") == (Concat(4, 2, 1), b"t")


# -- addresses -------------------------------------------------------------------------------

# (id, address, TON, as InboundText has it)
ADDRESSES = [
    ("international", "380501234567", 1, "+380501234567"),
    ("international, already with +", "+380501234567", 1, "+380501234567"),
    ("national", "0501234567", 2, "0501234567"),
    ("unknown", "380501234567", 0, "380501234567"),
    ("short code", "1234", 3, "1234"),
    ("alphanumeric", "MyShop", 5, "MyShop"),
    ("alphanumeric, wrongly international", "MyShop", 1, "MyShop"),
    ("empty", "", 1, ""),
]


@pytest.mark.parametrize(
    ("addr", "ton", "expected"), [c[1:] for c in ADDRESSES], ids=[c[0] for c in ADDRESSES]
)
def test_addresses_by_type_of_number(addr: str, ton: int, expected: str) -> None:
    assert address(addr, ton) == expected
    pdu = deliver(b"x", 1, source=addr, source_ton=ton, destination=addr, dest_ton=ton)
    part = read_mo(pdu)
    assert (part.sender, part.recipient) == (expected, expected)


# -- reassembly ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def part(seq: int, text: str, total: int = 3, ref: int = 42, sender: str = "+1") -> MoPart:
    return MoPart(sender, "1234", 0, gsm(text), Concat(ref, total, seq))


def message(text: str, parts: int = 3, incomplete: bool = False, sender: str = "+1") -> InboundText:
    return InboundText(sender, "1234", text, parts=parts, incomplete=incomplete)


def feed(r: Reassembler[str], *parts: MoPart) -> list[Assembled[str]]:
    """Each part in turn, tagged `p1`, `p2`, …; everything given out on the way."""
    out: list[Assembled[str]] = []
    for n, p in enumerate(parts, start=1):
        out += r.add(p, f"p{n}")
    return out


def reassembler(clock: Clock, timeout: float = 10.0, capacity: int = 100) -> Reassembler[str]:
    return Reassembler(timeout, capacity, clock)


# (id, the parts in the order they come, the message given out, the tags it carries)
ORDERS = [
    ("in order", (1, 2, 3), "aaabbbccc", ("p1", "p2", "p3")),
    ("out of order", (3, 1, 2), "aaabbbccc", ("p1", "p2", "p3")),
    ("reversed", (3, 2, 1), "aaabbbccc", ("p1", "p2", "p3")),
    (
        "a duplicate: ignored, its PDU answered too",
        (1, 1, 2, 3),
        "aaabbbccc",
        ("p1", "p2", "p3", "p4"),
    ),
]
TEXT_OF = {1: "aaa", 2: "bbb", 3: "ccc"}


@pytest.mark.parametrize(
    ("order", "text", "tags"), [c[1:] for c in ORDERS], ids=[c[0] for c in ORDERS]
)
def test_parts_come_out_as_one_message(
    order: tuple[int, ...], text: str, tags: tuple[str, ...]
) -> None:
    r = reassembler(Clock())
    *before, last = [part(seq, TEXT_OF[seq]) for seq in order]
    assert feed(r, *before) == []
    assert len(r) == 1
    done = r.add(last, f"p{len(order)}")
    assert done == [Assembled(message(text), tags)]
    assert len(r) == 0 and r.next_deadline() is None


def test_a_message_in_one_part_comes_out_at_once() -> None:
    r = reassembler(Clock())
    whole = MoPart("+1", "1234", 8, ucs2("так"))
    assert r.add(whole, "t") == [Assembled(message("так", parts=1), ("t",))]
    assert len(r) == 0


def test_messages_are_told_apart_by_sender_recipient_reference_and_count() -> None:
    r = reassembler(Clock())
    others = [part(1, "x", ref=43), part(1, "y", sender="+2"), part(1, "z", total=2)]
    assert feed(r, part(1, "aaa"), *others, part(2, "bbb")) == []
    assert len(r) == 4
    done = r.add(part(3, "ccc"), "last")
    assert [a.message for a in done] == [message("aaabbbccc")]
    assert done[0].tags == ("p1", "p5", "last")


def test_after_the_timeout_what_came_is_given_out_incomplete() -> None:
    clock = Clock()
    r = reassembler(clock, timeout=10.0)
    assert feed(r, part(3, "ccc"), part(1, "aaa")) == []
    assert r.next_deadline() == 1010.0
    clock.now = 1009.9
    assert r.expire() == []
    clock.now = 1010.0
    assert r.expire() == [Assembled(message("aaaccc", parts=2, incomplete=True), ("p1", "p2"))]
    assert len(r) == 0 and r.next_deadline() is None


def test_the_timeout_counts_from_the_first_part() -> None:
    clock = Clock()
    r = reassembler(clock, timeout=10.0)
    r.add(part(1, "aaa"), "a")
    clock.now += 6
    r.add(part(2, "bbb"), "b")  # does not put the deadline off
    clock.now += 4
    assert [a.message for a in r.expire()] == [message("aaabbb", parts=2, incomplete=True)]


def test_a_part_after_the_timeout_gives_out_the_late_message_first() -> None:
    clock = Clock()
    r = reassembler(clock, timeout=10.0)
    r.add(part(1, "aaa", total=2, ref=1), "old")
    clock.now += 11
    done = r.add(part(1, "new", total=2, ref=2), "new")
    assert done == [Assembled(message("aaa", parts=1, incomplete=True), ("old",))]
    assert len(r) == 1  # the new one waits for its part 2


def test_memory_is_bounded_the_oldest_goes_out_incomplete() -> None:
    clock = Clock()
    r = reassembler(clock, capacity=2)
    assert feed(r, part(1, "a", ref=1), part(1, "b", ref=2)) == []
    clock.now += 1
    done = r.add(part(1, "c", ref=3), "c")
    assert done == [Assembled(message("a", parts=1, incomplete=True), ("p1",))]
    assert len(r) == 2
    # A part of a message already waiting needs no room.
    assert r.add(part(2, "b", ref=2), "b2") == []
    assert r.next_deadline() == 1010.0  # message 2's


def test_flush_gives_out_everything_waiting() -> None:
    r = reassembler(Clock())
    feed(r, part(2, "bbb", ref=1), part(1, "x", ref=2), part(3, "ccc", ref=1))
    assert r.flush() == [
        Assembled(message("bbbccc", parts=2, incomplete=True), ("p1", "p3")),
        Assembled(message("x", parts=1, incomplete=True), ("p2",)),
    ]
    assert len(r) == 0


SPLIT_CHARACTERS = [
    # (id, data_coding, the parts' data, the text) — what a phone should not do, but may.
    (
        "a surrogate pair across two parts",
        8,
        (ucs2("ab") + ucs2(EMOJI)[:2], ucs2(EMOJI)[2:] + ucs2("c")),
        f"ab{EMOJI}c",
    ),
    ("an escape across two parts", 0, (gsm("ab") + b"\x1b", b"\x65c"), "ab€c"),
]


@pytest.mark.parametrize(
    ("coding", "data", "text"),
    [c[1:] for c in SPLIT_CHARACTERS],
    ids=[c[0] for c in SPLIT_CHARACTERS],
)
def test_a_character_cut_across_parts_is_read_whole(
    coding: int, data: tuple[bytes, bytes], text: str
) -> None:
    r = reassembler(Clock())
    parts = [MoPart("+1", "1234", coding, d, Concat(5, 2, n)) for n, d in enumerate(data, 1)]
    assert [a.message.text for a in feed(r, *parts)] == [text]


def test_parts_in_different_alphabets_are_read_each_in_its_own() -> None:
    r = reassembler(Clock())
    first = MoPart("+1", "1234", 0, gsm("Price: "), Concat(5, 2, 1))
    second = MoPart("+1", "1234", 8, ucs2("ціна"), Concat(5, 2, 2))
    assert [a.message.text for a in feed(r, first, second)] == ["Price: ціна"]


def test_a_reassembler_needs_a_timeout_and_room() -> None:
    with pytest.raises(ValueError):
        Reassembler(0, 10, Clock())
    with pytest.raises(ValueError):
        Reassembler(1.0, 0, Clock())
