"""An HTTP carrier's inbound calls (`[connectors.NAME.inbound]`): which calls are
inbound, the token they need, where each locator form finds the sender, our number
and the text, how a text in another character set than UTF-8 is decoded from the
call's own octets (Kannel's UCS-2 as percent-encoded UTF-16BE, Latin-1, …), the
Kannel preset's mapping, and every mistake in the table stopping start-up with its
key named."""

from __future__ import annotations

import tomllib
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from batgate.channels.base import CallbackNews, CallbackRefused, CarrierCall
from batgate.channels.http_carrier.callbacks import HttpCallbacks
from batgate.channels.http_carrier.inbound import concat_total, octet_params, text_codec
from batgate.channels.http_carrier.tokens import callback_url, secret
from batgate.channels.registry import build_callback_readers
from batgate.config import HttpCarrierSettings, Settings, load_settings
from batgate.domain.inbound import InboundText
from batgate.domain.outcomes import CarrierId, PartReceipt
from batgate.domain.status import ChannelStatus as CS

TOKEN = "mo-token-0123456789abcdef"
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "http-carriers.md"
UKRAINIAN = "Так, підтверджую замовлення №1001 — дякую!"


def kannel(**inbound: Any) -> HttpCarrierSettings:
    """The Kannel preset with an inbound table (the preset's, under these keys)."""
    return HttpCarrierSettings(
        kind="http",
        preset="kannel",
        url="http://127.0.0.1:13013/cgi-bin/sendsms",
        username="bat",
        password="kannel-pw",
        callback_token=TOKEN,
        inbound=inbound,
    )


KANNEL = kannel()


def provider(**inbound: Any) -> HttpCarrierSettings:
    """A JSON provider whose calls (status and inbound) come to a URL set at the provider."""
    return HttpCarrierSettings(
        kind="http",
        url="https://api.example.net/sms",
        send={"json": {"to": "{to}", "text": "{text}"}},
        answer={"id": "json:/id"},
        callback={"id": "json:/id", "status": "json:/state", "delivered": ["DELIVERED"]},
        callback_token=TOKEN,
        inbound=inbound,
    )


def get(raw_query: bytes, headers: dict[str, str] | None = None) -> CarrierCall:
    """A GET as the route gives it: the query's pairs read as UTF-8, and its octets."""
    query = urllib.parse.parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)
    return CarrierCall("GET", headers or {}, query, b"", raw_query)


def kannel_encoded(octets: bytes) -> str:
    """Octets percent-encoded as Kannel's octstr_url_encode does (a space as `+`)."""
    return urllib.parse.quote_from_bytes(octets, safe="-_.!~*'() ").replace(" ", "+")


def kannel_call(fields: dict[str, bytes | str | None]) -> CarrierCall:
    """Kannel's GET with these parameters (octets as they are; None: left out)."""
    raw = "&".join(
        f"{k}={kannel_encoded(v if isinstance(v, bytes) else v.encode())}"
        for k, v in fields.items()
        if v is not None
    )
    return get(raw.encode())


def kannel_mo(
    text: bytes,
    charset: str | None = "UTF-8",
    coding: str | None = "0",
    udh: bytes = b"",
    **more: str,
) -> CarrierCall:
    """Kannel's call of the get-url docs/http-carriers.md gives (%b and %u as octets)."""
    return kannel_call(
        {
            "kind": "mo",
            "token": TOKEN,
            "from": "+380671234567",
            "to": "+380441230000",
            "text": text,
            "charset": charset,
            "coding": coding,
            "udh": udh,
            "id": "76bffa10-cfe3-440a-8edc-738e37a80a74",
            **more,
        }
    )


def message(text: str, **more: Any) -> InboundText:
    fields: dict[str, Any] = {
        "sender": "+380671234567",
        "recipient": "+380441230000",
        "text": text,
        "carrier_id": "76bffa10-cfe3-440a-8edc-738e37a80a74",
        **more,
    }
    return InboundText(**fields)


def inbound(text: str, **more: Any) -> CallbackNews:
    return CallbackNews(inbound=(message(text, **more),), answer=b"", content_type="text/plain")


def read(settings: HttpCarrierSettings, call: CarrierCall) -> CallbackNews:
    return HttpCallbacks("kannel", settings).read(call)


def refused(settings: HttpCarrierSettings, call: CarrierCall) -> tuple[int, str]:
    with pytest.raises(CallbackRefused) as caught:
        read(settings, call)
    return caught.value.status, caught.value.code


# -- Kannel's get-url: what each kind of message from a phone comes as --------------------

LONG = "Please call me back about order 1001, the one with the blue box. " * 3

# (id, the octets of %b, %C, %c, the text stored)
KANNEL_TEXTS = [
    ("GSM-7, made UTF-8 by Kannel", "Yes, please {€} @ 12:00".encode(), "UTF-8", "0", None),
    ("Latin-1, made UTF-8 by Kannel", "Très bien «ça»".encode(), "UTF-8", "0", None),
    ("UCS-2: UTF-16BE octets", UKRAINIAN.encode("utf-16-be"), "UTF-16BE", "2", None),
    ("UCS-2 outside the BMP: a surrogate pair", "ok 👍".encode("utf-16-be"), "UTF-16BE", "2", None),
    ("UCS-2 recoded by smsbox (mo-recode)", UKRAINIAN.encode(), "UTF-8", "0", None),
    ("8-bit data: Latin-1, each octet kept", b"\x01\xff A", "8-BIT", "1", "\x01\xff A"),
    ("a text with line breaks and two spaces", b"line 1\nline  2", "UTF-8", "0", None),
    ("an empty text", b"", "UTF-8", "0", None),
]


@pytest.mark.parametrize(
    ("octets", "charset", "coding", "text"),
    [k[1:] for k in KANNEL_TEXTS],
    ids=[k[0] for k in KANNEL_TEXTS],
)
def test_kannel_texts(octets: bytes, charset: str, coding: str, text: str | None) -> None:
    news = read(KANNEL, kannel_mo(octets, charset, coding))
    expected = text if text is not None else octets.decode(charset)
    assert news == inbound(expected, parts=1)


def test_a_long_message_kannel_joined_counts_the_parts_its_text_takes() -> None:
    news = read(KANNEL, kannel_mo(LONG.encode()))
    assert news.inbound == (message(LONG, parts=2),)
    ucs2 = read(KANNEL, kannel_mo((UKRAINIAN * 3).encode("utf-16-be"), "UTF-16BE", "2"))
    assert ucs2.inbound == (message(UKRAINIAN * 3, parts=2),)


def test_a_part_kannel_could_not_join_is_incomplete() -> None:
    """After `sms-combine-concatenated-mo-timeout`, bearerbox gives the parts it has one
    by one, each with its user data header (%u)."""
    udh = bytes((5, 0x00, 3, 0x2A, 2, 1))  # part 1 of 2, reference 42
    news = read(KANNEL, kannel_mo(LONG[:153].encode(), udh=udh))
    assert news.inbound == (message(LONG[:153], parts=1, incomplete=True),)
    ports = bytes((6, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0))  # a port, no concatenation
    assert read(KANNEL, kannel_mo(b"Hi", udh=ports)).inbound == (message("Hi"),)


def test_the_text_is_decoded_from_the_querys_octets_not_as_utf8() -> None:
    """UTF-16BE octets read as UTF-8 first (as the route's query pairs are) are lost:
    the reader goes back to the raw query."""
    call = kannel_mo(UKRAINIAN.encode("utf-16-be"), "UTF-16BE", "2")
    assert dict(call.query)["text"] != UKRAINIAN
    assert read(KANNEL, call).inbound[0].text == UKRAINIAN


# (id, charset said, coding said, the octets, the text)
CHARSETS = [
    ("charset UTF-16BE", "UTF-16BE", None, "Привіт".encode("utf-16-be"), "Привіт"),
    ("charset UCS-2 (not Python's name)", "UCS-2", None, "Привіт".encode("utf-16-be"), "Привіт"),
    ("charset ISO-8859-1", "ISO-8859-1", None, "Très".encode("latin-1"), "Très"),
    ("charset latin1", "latin1", None, "Très".encode("latin-1"), "Très"),
    ("charset windows-1251", "windows-1251", None, "Привіт".encode("cp1251"), "Привіт"),
    ("coding 2 alone: UTF-16BE", None, "2", "Привіт".encode("utf-16-be"), "Привіт"),
    ("coding 1 alone: Latin-1", None, "1", "Très".encode("latin-1"), "Très"),
    ("an unknown charset, coding 2", "8-BIT", "2", "Привіт".encode("utf-16-be"), "Привіт"),
    ("a known charset wins over coding", "UTF-8", "2", "Привіт".encode(), "Привіт"),
    ("neither: UTF-8", None, None, "Привіт".encode(), "Привіт"),
    ("an unknown coding: UTF-8", None, "9", "Привіт".encode(), "Привіт"),
    ("a bytes codec is no charset: UTF-8", "base64", None, b"SGk=", "SGk="),
    ("odd UTF-16 octets: U+FFFD", "UTF-16BE", None, b"\x04\x1f\x04", "П\ufffd"),
    ("not UTF-8: U+FFFD", None, None, b"Tr\xe8s", "Tr\ufffds"),
    ("a NUL (no text column holds it): U+FFFD", "UTF-16BE", None, b"\x00\x00\x00A", "\ufffdA"),
]


@pytest.mark.parametrize(
    ("charset", "coding", "octets", "text"),
    [c[1:] for c in CHARSETS],
    ids=[c[0] for c in CHARSETS],
)
def test_charsets(charset: str | None, coding: str | None, octets: bytes, text: str) -> None:
    assert read(KANNEL, kannel_mo(octets, charset, coding)).inbound[0].text == text


def test_codings_of_ones_own() -> None:
    settings = kannel(codings={"8": "UTF-16BE", "0": "ISO-8859-1"})
    call = kannel_mo("Привіт".encode("utf-16-be"), charset=None, coding="8")
    assert read(settings, call).inbound[0].text == "Привіт"
    call = kannel_mo("Très".encode("latin-1"), charset=None, coding="0")
    assert read(settings, call).inbound[0].text == "Très"


# -- each locator form ----------------------------------------------------------------------


def form(body: bytes, query: str = f"token={TOKEN}") -> CarrierCall:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return CarrierCall("POST", headers, urllib.parse.parse_qsl(query), body, query.encode())


def posted(doc: Any) -> CarrierCall:
    headers = {"content-type": "application/json"}
    return CarrierCall(
        "POST", headers, [("token", TOKEN)], orjson.dumps(doc), b"token=" + TOKEN.encode()
    )


BY_PARAM = {"when": "param:event", "when_values": ["mo"], "from": "param:msisdn"}
BY_PARAM |= {"to": "param:short", "text": "param:msg", "id": "param:msgid"}
BY_JSON = {"when": "json:/type", "when_values": ["inbound"], "from": "json:/from"}
BY_JSON |= {"to": "json:/to", "text": "json:/text", "id": "json:/id"}

# (id, the inbound table, the call, the message it brings)
LOCATORS: list[tuple[str, dict[str, Any], CarrierCall, InboundText]] = [
    (
        "param: in the query",
        BY_PARAM,
        get(f"token={TOKEN}&event=mo&msisdn=380671234567&short=4040&msg=Hi+there&msgid=7".encode()),
        InboundText("380671234567", "4040", "Hi there", carrier_id="7"),
    ),
    (
        "param: in a form body, UTF-16BE by its charset field",
        {**BY_PARAM, "charset": "param:enc"},
        form(
            b"event=mo&msisdn=%2B380671234567&short=4040&enc=UTF-16BE&msg="
            + urllib.parse.quote_from_bytes("Дякую".encode("utf-16-be")).encode()
        ),
        InboundText("+380671234567", "4040", "Дякую"),
    ),
    (
        "json: pointers",
        BY_JSON,
        posted({"type": "inbound", "from": "+380671234567", "to": "4040", "text": "Так", "id": 9}),
        InboundText("+380671234567", "4040", "Так", carrier_id="9"),
    ),
    (
        "regex: in the body, header: of the call",
        {
            "when": "header:X-Event",
            "when_values": ["mo"],
            "from": "header:X-From",
            "to": r"regex:^to: (\S+)",
            "text": "regex:(?s)text: (.*)",
        },
        CarrierCall(
            "POST",
            {"x-event": "MO", "x-from": "+380671234567", "content-type": "text/plain"},
            [("token", TOKEN)],
            "to: 4040\ntext: Добре,\nдякую".encode(),
        ),
        InboundText("+380671234567", "4040", "Добре,\nдякую"),
    ),
    (
        "a json: udh in hex, with a concatenation element: one part, incomplete",
        {**BY_JSON, "udh": "json:/udh"},
        posted(
            {"type": "inbound", "from": "+1", "to": "4040", "text": "Hel", "udh": "06080400010302"}
        ),
        InboundText("+1", "4040", "Hel", incomplete=True),
    ),
    (
        "a udh without a concatenation element (a port): whole",
        {**BY_JSON, "udh": "json:/udh"},
        posted(
            {"type": "inbound", "from": "+1", "to": "4040", "text": "Hel", "udh": "0605040b8423f0"}
        ),
        InboundText("+1", "4040", "Hel"),
    ),
]


@pytest.mark.parametrize(
    ("table", "call", "expected"), [c[1:] for c in LOCATORS], ids=[c[0] for c in LOCATORS]
)
def test_locators(table: dict[str, Any], call: CarrierCall, expected: InboundText) -> None:
    assert read(provider(**table), call).inbound == (expected,)


def test_the_answer_is_empty_text_unless_set() -> None:
    call = posted({"type": "inbound", "from": "+1", "to": "4040", "text": "Hi"})
    news = read(provider(**BY_JSON), call)
    assert (news.answer, news.content_type) == (b"", "text/plain")
    settings = provider(**BY_JSON, answer='{"ok": true}', answer_type="application/json")
    news = read(settings, call)
    assert (news.answer, news.content_type) == (b'{"ok": true}', "application/json")


def test_a_call_without_a_sender_recipient_or_text_is_not_readable() -> None:
    whole = {"type": "inbound", "from": "+1", "to": "4040", "text": "Hi"}
    for missing in ("from", "to", "text"):
        doc = {k: v for k, v in whole.items() if k != missing}
        assert refused(provider(**BY_JSON), posted(doc)) == (400, "INVALID_REQUEST"), missing
    blank = {**whole, "from": " "}
    assert refused(provider(**BY_JSON), posted(blank)) == (400, "INVALID_REQUEST")


# -- the token, and inbound calls told from status calls -----------------------------------


def test_an_inbound_call_needs_the_fixed_token() -> None:
    good = kannel_mo(b"STOP")
    assert read(KANNEL, good).inbound
    key = secret("kannel", TOKEN, KANNEL.credentials)
    assert key is not None
    handover = urllib.parse.urlsplit(callback_url("http://gw", "kannel", "m1.0", key)).query
    others = {
        "no token": [(k, v) for k, v in good.query if k != "token"],
        "a wrong token": [(k, "x" * 24 if k == "token" else v) for k, v in good.query],
        "the token of a hand-over": [
            *[(k, v) for k, v in good.query if k != "token"],
            *urllib.parse.parse_qsl(handover),
        ],
    }
    for what, query in others.items():
        call = CarrierCall("GET", {}, query, b"", urllib.parse.urlencode(query).encode())
        assert refused(KANNEL, call) == (401, "UNAUTHORIZED"), what


def dlr(ref: str, dlr_type: str) -> CarrierCall:
    """Kannel's call of the dlr-url batgate gave it."""
    key = secret("kannel", TOKEN, KANNEL.credentials)
    assert key is not None
    url = callback_url("http://gw", "kannel", ref, key) + f"&type={dlr_type}"
    raw = urllib.parse.urlsplit(url).query
    return CarrierCall("GET", {}, urllib.parse.parse_qsl(raw), b"", raw.encode())


def test_inbound_calls_are_told_from_status_calls_by_when() -> None:
    receipt = PartReceipt(CarrierId("m1.0"), CS.DELIVERED, "carrier status '1'")
    assert read(KANNEL, dlr("m1.0", "1")) == CallbackNews((receipt,))
    assert read(KANNEL, kannel_mo(b"Hi")).inbound[0].text == "Hi"
    # `when` not holding: a status call (the fixed token does for one), without its ref.
    assert refused(KANNEL, kannel_mo(b"Hi", kind="dlr")) == (400, "INVALID_REQUEST")
    with_ref = dlr("m1.0", "1")
    query = [*with_ref.query, ("kind", "MO"), ("from", "+1"), ("to", "4040"), ("text", "x")]
    raw = urllib.parse.urlencode(query).encode()
    # A dlr-url's token does not make a call marked inbound the carrier's.
    assert refused(KANNEL, CarrierCall("GET", {}, query, b"", raw)) == (401, "UNAUTHORIZED")


def test_without_an_inbound_table_a_marked_call_is_a_status_call() -> None:
    plain = HttpCarrierSettings(**{**KANNEL.model_dump(by_alias=True), "inbound": None})
    assert refused(plain, kannel_mo(b"Hi")) == (400, "INVALID_REQUEST")  # no ref, no type


def test_the_raw_query_is_rebuilt_when_the_call_has_none() -> None:
    """A reader given only the query's pairs (UTF-8 texts) reads them as they are."""
    call = kannel_mo("Привіт".encode())
    bare = CarrierCall("GET", {}, call.query, b"")
    assert read(KANNEL, bare).inbound[0].text == "Привіт"


# -- the pieces ------------------------------------------------------------------------------

# (id, the raw query, a form body, the pairs as octets)
OCTETS = [
    ("plus is a space", b"a=1+2&b=%2B", None, [("a", b"1 2"), ("b", b"+")]),
    ("octets kept", b"t=%04%22%00+", None, [("t", b"\x04\x22\x00 ")]),
    ("blank and bare", b"a=&b&&c=1", None, [("a", b""), ("b", b""), ("c", b"1")]),
    ("query, then form", b"a=1", b"a=2&b=3", [("a", b"1"), ("a", b"2"), ("b", b"3")]),
]


@pytest.mark.parametrize(
    ("raw", "body", "pairs"), [o[1:] for o in OCTETS], ids=[o[0] for o in OCTETS]
)
def test_octet_params(raw: bytes, body: bytes | None, pairs: list[tuple[str, bytes]]) -> None:
    assert octet_params(raw, body) == pairs


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("UTF-8", "utf-8"),
        ("utf8", "utf-8"),
        ("UTF-16BE", "utf-16-be"),
        ("UCS-2", "utf-16-be"),
        ("ISO-8859-1", "iso8859-1"),
        ("8-BIT", None),
        ("base64", None),
        ("", None),
    ],
)
def test_text_codec(name: str, codec: str | None) -> None:
    assert text_codec(name) == codec


@pytest.mark.parametrize(
    ("udh", "total"),
    [
        (bytes((5, 0, 3, 7, 3, 1)), 3),
        (bytes((6, 8, 4, 1, 2, 2, 1)), 2),
        (bytes((11, 5, 4, 0x0B, 0x84, 0x23, 0xF0, 0, 3, 9, 4, 2)), 4),  # ports, then concat
        (bytes((6, 5, 4, 0x0B, 0x84, 0x23, 0xF0)), None),
        (bytes((5, 0, 3, 7)), None),  # cut short
        (b"", None),
    ],
)
def test_concat_total(udh: bytes, total: int | None) -> None:
    assert concat_total(udh) == total


# -- the table: the preset, the guide's examples, and mistakes ------------------------------

Load = Callable[[str], Settings]

KANNEL_TOML = f"""
[connectors.kannel]
kind = "http"
preset = "kannel"
url = "http://127.0.0.1:13013/cgi-bin/sendsms"
username = "batgate"
password = "s3cret"
callback_token = "{TOKEN}"
"""
PROVIDER_TOML = f"""
[connectors.prov]
kind = "http"
url = "https://api.example.net/v1/sms"
password = "api-key"
callback_token = "{TOKEN}"
[connectors.prov.send]
json = {{ to = "{{to}}", text = "{{text}}" }}
[connectors.prov.answer]
id = "json:/id"
[connectors.prov.callback]
id = "json:/id"
status = "json:/state"
delivered = ["DELIVERED"]
"""
BY_REF_TOML = """
[connectors.prov]
kind = "http"
url = "https://api.example.net/v1/sms"
password = "api-key"
[connectors.prov.send]
json = { to = "{to}", text = "{text}", report = "{callback_url}" }
[connectors.prov.callback]
status = "json:/state"
delivered = ["DELIVERED"]
"""
MO = """
[connectors.prov.inbound]
when = "param:event"
from = "param:from"
to = "param:to"
text = "param:text"
"""


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Load:
    for name in ("BATGATE_PORT", "BATGATE_HOST", "BATGATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)

    def load(toml: str) -> Settings:
        path = tmp_path / "batgate.toml"
        path.write_text(toml)
        monkeypatch.setenv("BATGATE_CONFIG", str(path))
        return load_settings()

    return load


def http_table(settings: Settings, name: str) -> HttpCarrierSettings:
    table = settings.connectors[name]
    assert isinstance(table, HttpCarrierSettings)
    return table


def test_the_kannel_preset_fills_an_inbound_table_declared_even_empty(load: Load) -> None:
    assert http_table(load(KANNEL_TOML), "kannel").inbound is None
    table = http_table(load(KANNEL_TOML + "[connectors.kannel.inbound]\n"), "kannel").inbound
    assert table is not None
    assert (table.when, table.when_values, table.sender, table.text) == (
        "param:kind",
        ["mo"],
        "param:from",
        "param:text",
    )
    assert (table.charset, table.coding, table.udh, table.answer) == (
        "param:charset",
        "param:coding",
        "param:udh",
        "",
    )
    mine = load(
        KANNEL_TOML + '[connectors.kannel.inbound]\nwhen_values = ["in"]\nudh = "param:u"\n'
    )
    table = http_table(mine, "kannel").inbound
    assert table is not None
    assert (table.when, table.when_values, table.udh, table.to) == (
        "param:kind",
        ["in"],
        "param:u",
        "param:to",
    )


def test_the_guides_kannel_block_calls_what_the_preset_reads() -> None:
    """The get-url of docs/http-carriers.md gives each parameter the preset reads, with
    the escape codes chosen there, and tells smsbox to send nothing back."""
    guide = GUIDE.read_text()
    (block,) = [b for b in guide.split("```ini\n")[1:] if b.startswith("group = sms-service")]
    block = block.split("```", 1)[0]
    lines = dict(line.split(" = ", 1) for line in block.splitlines() if " = " in line)
    assert (lines["keyword"], lines["catch-all"]) == ("default", "true")
    assert (lines["max-messages"], lines["omit-empty"]) == ("0", "true")
    url = urllib.parse.urlsplit(lines["get-url"].strip('"'))
    assert url.path == "/callbacks/kannel"
    params = dict(p.split("=", 1) for p in url.query.split("&"))
    escapes = {"from": "%p", "to": "%P", "text": "%b", "charset": "%C", "coding": "%c"}
    assert params == {**escapes, "kind": "mo", "token": params["token"], "udh": "%u", "id": "%I"}
    assert len(params["token"]) >= 16 and "%" not in params["token"]
    toml = [b.split("```", 1)[0] for b in guide.split("```toml\n")[1:]]
    (ours,) = [b for b in toml if "callback_token" in b and "[connectors.kannel.inbound]" in b]
    assert f'callback_token = "{params["token"]}"' in ours


def test_the_guides_inbound_tables_load() -> None:
    """Each `[connectors.X.inbound]` example of docs/http-carriers.md, on the guide's own
    table for X with a callback_token."""
    guide = GUIDE.read_text()
    blocks = [tomllib.loads(b.split("```", 1)[0]) for b in guide.split("```toml\n")[1:]]
    tables: dict[str, dict[str, Any]] = {}  # the first table of each connector
    for block in blocks:
        for name, table in block.get("connectors", {}).items():
            if "kind" in table:
                tables.setdefault(name, table)
    examples = [
        (name, table["inbound"])
        for block in blocks
        for name, table in block.get("connectors", {}).items()
        if set(table) == {"inbound"} and table["inbound"]
    ]
    assert [name for name, _ in examples] == ["kannel", "acme", "beta"]
    for name, mapping in examples:
        base = {**tables[name], "callback_token": TOKEN}
        loaded = HttpCarrierSettings(**{**base, "inbound": mapping})
        assert loaded.inbound is not None, name
        HttpCallbacks(name, loaded)  # it compiles
    preset = HttpCarrierSettings(**{**tables["kannel"], "callback_token": TOKEN, "inbound": {}})
    assert (
        preset.inbound
        == HttpCarrierSettings(
            **{**tables["kannel"], "callback_token": TOKEN, "inbound": examples[0][1]}
        ).inbound
    )


# (id, the table, the complaint: one line per problem, each naming its key)
MISTAKES = [
    (
        "a typo in the table",
        PROVIDER_TOML + MO + 'texte = "param:t"\n',
        "connectors.prov.inbound.texte: not a known setting (a typo?)",
    ),
    (
        "no text",
        PROVIDER_TOML + MO.replace('text = "param:text"\n', ""),
        "connectors.prov.inbound.text: Field required",
    ),
    (
        "no from",
        PROVIDER_TOML + MO.replace('from = "param:from"\n', ""),
        "connectors.prov.inbound.from: Field required",
    ),
    (
        "no when",
        PROVIDER_TOML + MO.replace('when = "param:event"\n', ""),
        "connectors.prov.inbound.when: Field required",
    ),
    (
        "a bad locator",
        PROVIDER_TOML + MO.replace('"param:from"', '"from"'),
        "connectors.prov.inbound.from: 'from': a locator is one of json:…, regex:…, param:…",
    ),
    (
        "a bad JSON pointer",
        PROVIDER_TOML + MO + 'id = "json:id"\n',
        "connectors.prov.inbound.id: 'json:id': a JSON pointer starts with '/'",
    ),
    (
        "a bad regex",
        PROVIDER_TOML + MO.replace('"param:event"', '"regex:(mo"'),
        "connectors.prov.inbound.when: 'regex:(mo': not a regular expression",
    ),
    (
        "a coding's unknown character set",
        PROVIDER_TOML + MO + 'coding = "param:c"\ncodings = { "2" = "UCS-9" }\n',
        "connectors.prov.inbound.codings.2: 'UCS-9' is not a character set",
    ),
    (
        "a charset for a JSON text",
        PROVIDER_TOML + MO.replace('"param:text"', '"json:/text"') + 'charset = "param:cs"\n',
        "connectors.prov.inbound.charset: decodes a param: text only",
    ),
    (
        "a bad answer_type",
        PROVIDER_TOML + MO + 'answer_type = "json"\n',
        "connectors.prov.inbound.answer_type: String should match pattern",
    ),
    (
        "no callback_token (status calls by their hand-over's token)",
        BY_REF_TOML + MO,
        "connectors.prov.callback_token: inbound calls carry ?token=CALLBACK_TOKEN: set one",
    ),
]


def test_a_connector_may_take_inbound_calls_only(load: Load) -> None:
    """No `callback` table (its hand-overs count as delivered once taken): the route
    still takes its inbound calls, and refuses a call that is not one."""
    settings = load(
        KANNEL_TOML.replace('preset = "kannel"\n', "")
        + '[connectors.kannel.send]\njson = { to = "{to}" }\n'
        + MO.replace("prov", "kannel")
    )
    reader = build_callback_readers(settings)["kannel"]
    query = [("event", "mo"), ("from", "+380501234567"), ("to", "4040"), ("text", "Hi")]
    query.append(("token", TOKEN))
    news = reader.read(CarrierCall("GET", {}, query, b""))
    assert news.inbound == (InboundText("+380501234567", "4040", "Hi"),)
    with pytest.raises(CallbackRefused):
        reader.read(CarrierCall("GET", {}, [("token", TOKEN), ("status", "1")], b""))


@pytest.mark.parametrize(
    ("toml", "complaint"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_a_mistake_stops_start_up_naming_its_key(load: Load, toml: str, complaint: str) -> None:
    with pytest.raises(ValueError) as caught:
        load(toml)
    assert str(caught.value).startswith(complaint), str(caught.value)
