"""An HTTP carrier's request templates: placeholders, their values, the rendered request."""

from __future__ import annotations

import urllib.parse
from typing import Any

import orjson
import pytest

from batgate.channels.http_carrier.presets import KANNEL
from batgate.channels.http_carrier.template import (
    PlaceholderError,
    RequestPlan,
    compile_json,
    compile_template,
    values_of,
)
from batgate.domain.messages import MessageType, Step
from batgate.domain.parts import sms_parts

CALLBACK = "http://gw.example.net/callbacks/kannel?ref=m1.0&token=abc"


def step(to: str = "+380501234567", text: str | None = "Hello", ttl: int = 3600) -> Step:
    parts = sms_parts(text or "").parts
    return Step(MessageType.SMS, to, "Shop", text, None, ttl, parts)


def values(**changes: Any) -> dict[str, str]:
    found = values_of("m1", 0, step(**changes), CALLBACK, "bat", "p@ss word")
    return found


# (template, what it renders to with `values()`)
RENDERED = [
    ("{to}", "+380501234567"),
    ("{to_digits}", "380501234567"),
    ("tel:{to} from {from}", "tel:+380501234567 from Shop"),
    ("{{literal}} {text}", "{literal} Hello"),
    ("{message_id}/{step} = {ref}", "m1/0 = m1.0"),
    ("{coding}{unicode} {parts} {ttl}s {validity_minutes}min", "00 1 3600s 60min"),
    ("{type} on {channel}", "sms on sms"),
    ("{username}:{password}", "bat:p@ss word"),
    ("{callback_url}", CALLBACK),
    ("no placeholder at all", "no placeholder at all"),
]


@pytest.mark.parametrize(("text", "rendered"), RENDERED, ids=[t for t, _ in RENDERED])
def test_placeholders_render_their_values(text: str, rendered: str) -> None:
    assert compile_template(text).render(values()) == rendered


# (step, coding, unicode, validity_minutes)
CODINGS = [
    (step(text="Hello {world} €"), "0", "0", "60"),
    (step(text="Привіт"), "2", "1", "60"),
    (step(text="ok 😀"), "2", "1", "60"),
    (step(ttl=61), "0", "0", "2"),
    (step(ttl=30), "0", "0", "1"),
    (step(text=None), "0", "0", "60"),
]


@pytest.mark.parametrize(("s", "coding", "wide", "minutes"), CODINGS)
def test_coding_and_validity_follow_the_step(s: Step, coding: str, wide: str, minutes: str) -> None:
    found = values_of("m1", 0, s, "", "", "")
    assert (found["coding"], found["unicode"], found["validity_minutes"]) == (coding, wide, minutes)


# (template, a piece of the complaint)
BAD = [
    ("{too}", "unknown placeholder {too} (known: {to}, {to_digits},"),
    ("{}", "unknown placeholder {}"),
    ("{0}", "unknown placeholder {0}"),
    ("{to.x}", "unknown placeholder {to.x}"),
    ("{to!r}", "{to}: a placeholder takes no format"),
    ("{to:>20}", "{to}: a placeholder takes no format"),
    ("{to", "a brace without its pair"),
    ("to}", "a brace without its pair"),
]


@pytest.mark.parametrize(("text", "complaint"), BAD, ids=[t for t, _ in BAD])
def test_a_bad_template_says_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError) as caught:
        compile_template(text)
    assert complaint in str(caught.value)


def test_a_bad_string_in_a_json_body_says_where() -> None:
    with pytest.raises(PlaceholderError) as caught:
        compile_json({"messages": [{"to": "{to}"}, {"to": "{from}", "body": "{txt}"}]})
    assert caught.value.path == ("messages", 1, "body")
    assert "{txt}" in caught.value.message


def plan(**send: Any) -> RequestPlan:
    return RequestPlan.compile(
        send.get("method", "POST"),
        send.get("url", "https://api.example.net/v1/sms"),
        send.get("headers", {}),
        send.get("query", {}),
        send.get("form"),
        send.get("json"),
    )


def test_a_json_body_keeps_numbers_numbers_and_json_escapes_text() -> None:
    request = plan(
        json={
            "messages": [{"to": "{to}", "text": "{text}", "parts": "{parts}", "flash": False}],
            "label": "step {step} of {message_id}",
            "coding": "{coding}",
        },
        headers={"Authorization": "Bearer {password}", "Idempotency-Key": "{ref}"},
    ).render(values(text='Say "hi"\nnow'), orjson.dumps)
    assert request.method == "POST"
    assert request.url == "https://api.example.net/v1/sms"
    assert request.headers == {
        "Authorization": "Bearer p@ss word",
        "Idempotency-Key": "m1.0",
        "Content-Type": "application/json",
    }
    assert request.body is not None
    assert orjson.loads(request.body) == {
        "messages": [{"to": "+380501234567", "text": 'Say "hi"\nnow', "parts": 1, "flash": False}],
        "label": "step 0 of m1",
        "coding": 0,
    }


def test_a_form_body_and_the_query_are_percent_encoded() -> None:
    request = plan(
        url="https://api.example.net/{username}/send?v=2",
        query={"key": "{password}"},
        form={"to": "{to}", "msg": "{text}"},
    ).render(values(text="a&b=c ü"), orjson.dumps)
    assert request.url == "https://api.example.net/bat/send?v=2&key=p%40ss+word"
    assert request.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert request.body == b"to=%2B380501234567&msg=a%26b%3Dc+%C3%BC"


def test_the_kannel_preset_sends_the_dlr_url_whole_inside_the_query() -> None:
    send = KANNEL["send"]
    request = plan(
        method=send["method"], url="http://127.0.0.1:13013/cgi-bin/sendsms", query=send["query"]
    ).render(values(text="Привіт"), orjson.dumps)
    assert request.method == "GET" and request.body is None
    query = request.url.split("?", 1)[1]
    assert "&dlr-url=http%3A%2F%2Fgw.example.net%2Fcallbacks%2F" in query
    assert dict(urllib.parse.parse_qsl(query)) == {
        "username": "bat",
        "password": "p@ss word",
        "from": "Shop",
        "to": "+380501234567",
        "text": "Привіт",
        "charset": "UTF-8",
        "coding": "2",
        "validity": "60",
        "dlr-mask": "19",
        "dlr-url": CALLBACK + "&type=%d",
    }


def test_the_placeholders_a_request_sends() -> None:
    found = plan(
        url="https://api.example.net/{username}",
        headers={"X-Key": "{password}"},
        query={"to": "{to}"},
        json={"a": ["{text}", {"b": "{callback_url}"}]},
    ).names
    assert found == {"username", "password", "to", "text", "callback_url"}
