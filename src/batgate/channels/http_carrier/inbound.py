"""An HTTP carrier's inbound calls: a message from a phone, brought to `/callbacks/NAME`.
Pure.

The `[connectors.NAME.inbound]` table (docs/http-carriers.md, "Messages from phones")
says which calls are inbound — those where its `when` condition holds — and where
such a call gives the sender (`from`), our number (`to`), the text and the carrier's
id, with the locators of the status calls.

**The text's octets.** A `param:` text is read from the call's own octets (the raw
query, or a form body), not from the query as UTF-8, so that a carrier may send it
in any character set: Kannel's get-url gives a UCS-2 message as its UTF-16BE octets,
percent-encoded (`%b`), and says so in `%C` (`charset`) and `%c` (`coding`). The
character set is the `charset` the call names when Python knows it, else what its
`coding` value means (`codings`: Kannel's 0, 1, 2 by default), else UTF-8. An octet
the character set has no character for is read as U+FFFD, so a malformed message is
still stored rather than refused and sent again and again. Other locators' texts are
text already (JSON is Unicode).
"""

from __future__ import annotations

import codecs
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from batgate.channels.http_carrier.extract import Condition, Locator, Source, parse_locator
from batgate.domain.inbound import InboundText
from batgate.domain.parts import sms_parts

# Kannel's `coding` (%c): 0 7-bit, already UTF-8 in Kannel; 1 8-bit, octets no alphabet
# names (Latin-1 keeps each one as one character); 2 UCS-2, its UTF-16BE octets.
KANNEL_CODINGS: dict[str, str] = {"0": "UTF-8", "1": "ISO-8859-1", "2": "UTF-16BE"}
# Names carriers use that Python's codecs do not know.
_ALIASES = {"ucs-2": "utf-16-be", "ucs2": "utf-16-be", "ucs-2be": "utf-16-be"}
_CONCAT_8BIT, _CONCAT_16BIT = 0x00, 0x08  # user data header elements: concatenation
_NUL = "\x00"  # a text column cannot hold it (PostgreSQL)


class Unreadable(ValueError):
    """An inbound call that does not give what the mapping says it gives."""


def text_codec(name: str) -> str | None:
    """Python's codec for a character set's name (IANA's or Python's, `UCS-2` too);
    None for a name it does not know, or one that is not a text encoding."""
    folded = name.strip().lower()
    folded = _ALIASES.get(folded, folded)
    try:
        info = codecs.lookup(folded)
    except LookupError:
        return None
    # bytes.decode refuses bytes-to-bytes codecs (base64, zlib, …) by this mark.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def octet_params(raw_query: bytes, form: bytes | None) -> list[tuple[str, bytes]]:
    """A call's parameters with their values as octets: the query's, then a form body's
    (as `Source.params` orders them). `+` is a space; names are read as UTF-8."""
    pairs: list[tuple[str, bytes]] = []
    for raw in (raw_query, form or b""):
        for field in raw.split(b"&"):
            if not field:
                continue
            name, _, value = field.partition(b"=")
            pairs.append((_unquote(name).decode("utf-8", "replace"), _unquote(value)))
    return pairs


def _unquote(octets: bytes) -> bytes:
    return urllib.parse.unquote_to_bytes(octets.replace(b"+", b" "))


def concat_total(udh: bytes) -> int | None:
    """How many parts the concatenation element of a user data header says its message
    has (None: no such element). `udh` starts with its length octet."""
    header = udh[1 : 1 + udh[0]] if udh else b""
    at, total = 0, None
    while at + 2 <= len(header):
        element, size = header[at], header[at + 1]
        value = header[at + 2 : at + 2 + size]
        at += 2 + size
        if len(value) != size:
            break
        if element == _CONCAT_8BIT and size == 3:
            total = value[1]
        elif element == _CONCAT_16BIT and size == 4:
            total = value[2]
    return total


@dataclass(frozen=True, slots=True)
class InboundRules:
    """The `[connectors.NAME.inbound]` table, compiled."""

    when: Condition
    sender: Locator
    recipient: Locator
    text: Locator
    id: Locator | None
    charset: Locator | None
    coding: Locator | None
    codings: Mapping[str, str]  # a `coding` value → Python's codec
    udh: Locator | None
    answer: bytes
    content_type: str

    @classmethod
    def of(
        cls,
        when: str,
        sender: str,
        to: str,
        text: str,
        when_values: Sequence[str] = (),
        id: str | None = None,
        charset: str | None = None,
        coding: str | None = None,
        codings: Mapping[str, str] | None = None,
        udh: str | None = None,
        answer: str = "",
        answer_type: str = "text/plain",
    ) -> InboundRules:
        def optional(locator: str | None) -> Locator | None:
            return None if locator is None else parse_locator(locator)

        known = {}
        for value, name in (KANNEL_CODINGS if codings is None else codings).items():
            codec = text_codec(name)
            if codec is None:
                raise ValueError(f"codings.{value}: {name!r} is not a character set")
            known[value] = codec
        return cls(
            Condition.of(when, when_values, ("json", "regex", "param", "header")),
            parse_locator(sender),
            parse_locator(to),
            parse_locator(text),
            optional(id),
            optional(charset),
            optional(coding),
            known,
            optional(udh),
            answer.encode(),
            answer_type,
        )

    def holds(self, source: Source) -> bool:
        """Whether the call is an inbound one (else it is a status call)."""
        return self.when.holds(source)

    def read(self, source: Source, octets: Sequence[tuple[str, bytes]]) -> InboundText:
        """The message the call brings; `octets`: its parameters as octets
        (:func:`octet_params`). Unreadable when the sender, recipient or text is not
        there."""
        sender = _address(self.sender, source, "sender")
        recipient = _address(self.recipient, source, "recipient")
        text = self._text(source, octets)
        if text is None:
            raise Unreadable(f"the inbound call gives no text at {self.text}")
        total = self._parts_of(source, octets)
        incomplete = total is not None and total >= 2  # one part its carrier did not join
        carrier_id = None if self.id is None else self.id.find(source)
        return InboundText(
            sender=sender,
            recipient=recipient,
            text=text.replace(_NUL, "\ufffd"),
            parts=1 if incomplete else sms_parts(text).parts,
            incomplete=incomplete,
            carrier_id=carrier_id or None,
        )

    def _text(self, source: Source, octets: Sequence[tuple[str, bytes]]) -> str | None:
        if self.text.kind != "param":
            return self.text.find(source)
        found = _first(octets, self.text.where)
        if found is None:
            return None
        return found.decode(self.codec(source), errors="replace")

    def codec(self, source: Source) -> str:
        """The character set of a `param:` text: the `charset` the call names when it is
        one, else what its `coding` means, else UTF-8."""
        if self.charset is not None:
            named = self.charset.find(source)
            codec = None if not named else text_codec(named)
            if codec is not None:
                return codec
        if self.coding is not None:
            said = self.coding.find(source)
            codec = None if said is None else self.codings.get(said.strip())
            if codec is not None:
                return codec
        return "utf-8"

    def _parts_of(self, source: Source, octets: Sequence[tuple[str, bytes]]) -> int | None:
        """The part count a user data header of the call names, if it has one."""
        if self.udh is None:
            return None
        if self.udh.kind == "param":
            udh = _first(octets, self.udh.where)
        else:
            try:
                udh = bytes.fromhex(self.udh.find(source) or "")
            except ValueError:
                udh = None
        return None if not udh else concat_total(udh)


def _address(locator: Locator, source: Source, what: str) -> str:
    found = (locator.find(source) or "").strip()
    if not found:
        raise Unreadable(f"the inbound call gives no {what} at {locator}")
    return found


def _first(pairs: Sequence[tuple[str, bytes]], name: str) -> bytes | None:
    return next((v for k, v in pairs if k == name), None)
