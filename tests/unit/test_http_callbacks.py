"""An HTTP carrier's status calls: the token that makes a call the carrier's, and the
mapping of its status values to receipts (the Kannel preset's, and one written out)."""

from __future__ import annotations

import urllib.parse
from typing import Any

import orjson
import pytest

from batgate.channels.base import CallbackNews, CallbackRefused, CarrierCall
from batgate.channels.http_carrier.callbacks import HttpCallbacks
from batgate.channels.http_carrier.tokens import callback_url, default_base, secret
from batgate.config import HttpCarrierSettings
from batgate.domain.outcomes import CarrierId, PartReceipt
from batgate.domain.status import ChannelStatus as CS

KANNEL = HttpCarrierSettings(
    kind="http",
    preset="kannel",
    url="http://127.0.0.1:13013/cgi-bin/sendsms",
    username="bat",
    password="kannel-pw",
)
FIXED_TOKEN = "0123456789abcdef-fixed"
# A provider whose callback URL is set at the provider: JSON posted with the fixed token.
CONSOLE = HttpCarrierSettings(
    kind="http",
    url="https://api.example.net/sms",
    send={"json": {"to": "{to}", "text": "{text}"}},
    answer={"id": "json:/id"},
    callback={
        "id": "json:/message/id",
        "status": "json:/message/state",
        "delivered": ["DELIVERED"],
        "undeliverable": ["FAILED", "EXPIRED"],
        "pending": ["SENT"],
        "unknown": "undeliverable",
    },
    callback_token=FIXED_TOKEN,
)


def kannel_call(
    ref: str, dlr_type: str, key: bytes | None = None, token: str | None = None
) -> CarrierCall:
    """Kannel's GET of the dlr-url batgate gave it (`%d` filled in)."""
    key = key if key is not None else secret("kannel", None, KANNEL.credentials)
    assert key is not None
    url = callback_url("http://127.0.0.1:8000", "kannel", ref, key) + f"&type={dlr_type}"
    query = urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)
    if token is not None:
        query = [(k, token if k == "token" else v) for k, v in query]
    return CarrierCall("GET", {}, query, b"")


def receipt(ref: str, status: CS, said: str) -> CallbackNews:
    """The news of one receipt; `said`: the carrier's status value, kept as its words."""
    return CallbackNews((PartReceipt(CarrierId(ref), status, f"carrier status {said!r}"),))


# (id, Kannel's DLR type, what the call brings)
KANNEL_TYPES = [
    ("1 delivered to the phone", "1", receipt("m1.0", CS.DELIVERED, "1")),
    ("2 not delivered to the phone", "2", receipt("m1.0", CS.UNDELIVERABLE, "2")),
    ("16 refused by the SMSC", "16", receipt("m1.0", CS.UNDELIVERABLE, "16")),
    ("8 the SMSC's acknowledgement", "8", CallbackNews()),
    ("4 queued at the SMSC", "4", CallbackNews()),
    ("32 unknown: pending", "32", CallbackNews()),
]


@pytest.mark.parametrize(
    ("dlr_type", "news"), [k[1:] for k in KANNEL_TYPES], ids=[k[0] for k in KANNEL_TYPES]
)
def test_kannel_dlr_types(dlr_type: str, news: CallbackNews) -> None:
    assert HttpCallbacks("kannel", KANNEL).read(kannel_call("m1.0", dlr_type)) == news


def refused(reader: HttpCallbacks, call: CarrierCall) -> tuple[int, str]:
    with pytest.raises(CallbackRefused) as caught:
        reader.read(call)
    return caught.value.status, caught.value.code


def test_a_kannel_call_without_its_token_is_refused() -> None:
    reader = HttpCallbacks("kannel", KANNEL)
    good = kannel_call("m1.0", "1")
    query = dict(good.query)
    other_message = [(k, "m2.0" if k == "ref" else v) for k, v in good.query]
    other_secret = secret("kannel", None, ["another-password"])
    assert other_secret is not None
    calls = {
        "no token": CarrierCall("GET", {}, [("ref", "m1.0"), ("type", "1")], b""),
        "a wrong token": kannel_call("m1.0", "1", token="0" * 32),
        "another message's token": CarrierCall("GET", {}, other_message, b""),
        "another secret's token": kannel_call("m1.0", "1", key=other_secret),
        "the token alone": CarrierCall("GET", {}, [("token", query["token"])], b""),
    }
    for what, call in calls.items():
        assert refused(reader, call) == (401, "UNAUTHORIZED"), what


def test_a_kannel_call_without_a_type_is_not_readable() -> None:
    call = kannel_call("m1.0", "1")
    bare = CarrierCall("GET", {}, [(k, v) for k, v in call.query if k != "type"], b"")
    assert refused(HttpCallbacks("kannel", KANNEL), bare) == (400, "INVALID_REQUEST")


def test_the_secret_is_the_same_in_every_process_and_changes_with_the_password() -> None:
    again = HttpCarrierSettings(**KANNEL.model_dump(by_alias=True))
    assert secret("kannel", None, again.credentials) == secret("kannel", None, KANNEL.credentials)
    other = HttpCarrierSettings(**{**KANNEL.model_dump(by_alias=True), "password": "new"})
    assert secret("kannel", None, other.credentials) != secret("kannel", None, KANNEL.credentials)
    assert secret("other", None, KANNEL.credentials) != secret("kannel", None, KANNEL.credentials)
    assert secret("kannel", "configured-token-1234", KANNEL.credentials) == b"configured-token-1234"


def console_call(body: Any, token: str | None = FIXED_TOKEN) -> CarrierCall:
    query = [] if token is None else [("token", token)]
    return CarrierCall("POST", {"content-type": "application/json"}, query, orjson.dumps(body))


# (id, the JSON posted, what the call brings)
CONSOLE_CALLS = [
    (
        "delivered",
        {"message": {"id": "p-1", "state": "DELIVERED"}},
        receipt("p-1", CS.DELIVERED, "DELIVERED"),
    ),
    (
        "letter case",
        {"message": {"id": "p-1", "state": "delivered"}},
        receipt("p-1", CS.DELIVERED, "delivered"),
    ),
    (
        "failed",
        {"message": {"id": 77, "state": "FAILED"}},
        receipt("77", CS.UNDELIVERABLE, "FAILED"),
    ),
    ("pending", {"message": {"id": "p-1", "state": "SENT"}}, CallbackNews()),
    ("unknown", {"message": {"id": "p-1", "state": "??"}}, receipt("p-1", CS.UNDELIVERABLE, "??")),
]


@pytest.mark.parametrize(
    ("body", "news"), [c[1:] for c in CONSOLE_CALLS], ids=[c[0] for c in CONSOLE_CALLS]
)
def test_a_provider_posting_json_with_the_fixed_token(body: Any, news: CallbackNews) -> None:
    assert HttpCallbacks("prov", CONSOLE).read(console_call(body)) == news


def test_a_form_posted_call_is_read_by_param() -> None:
    settings = HttpCarrierSettings(
        **{
            **CONSOLE.model_dump(by_alias=True, exclude={"callback"}),
            "callback": {"id": "param:id", "status": "param:st", "delivered": ["ok"]},
        }
    )
    call = CarrierCall(
        "POST",
        {"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
        [("token", FIXED_TOKEN)],
        b"id=p-9&st=OK",
    )
    assert HttpCallbacks("prov", settings).read(call) == receipt("p-9", CS.DELIVERED, "OK")


def test_a_provider_call_must_have_the_token_and_an_id() -> None:
    reader = HttpCallbacks("prov", CONSOLE)
    good = {"message": {"id": "p-1", "state": "DELIVERED"}}
    assert refused(reader, console_call(good, token=None)) == (401, "UNAUTHORIZED")
    assert refused(reader, console_call(good, token=FIXED_TOKEN + "x")) == (401, "UNAUTHORIZED")
    no_id = {"message": {"state": "DELIVERED"}}
    assert refused(reader, console_call(no_id)) == (400, "INVALID_REQUEST")
    assert refused(reader, console_call("not an object")) == (400, "INVALID_REQUEST")


# (host, port, the default callback base)
BASES = [
    ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
    ("0.0.0.0", 8080, "http://127.0.0.1:8080"),
    ("", 8080, "http://127.0.0.1:8080"),
    ("::", 9000, "http://[::1]:9000"),
    ("::1", 9000, "http://[::1]:9000"),
    ("gw.internal", 80, "http://gw.internal:80"),
]


@pytest.mark.parametrize(("host", "port", "base"), BASES)
def test_the_default_callback_base_is_the_apis_own_address(host: str, port: int, base: str) -> None:
    assert default_base(host, port) == base
