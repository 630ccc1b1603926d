"""Reading an HTTP carrier's answers: locators (JSON pointer, regex, param, header), and
what each answer means for the hand-over (taken, refused, not taken, maybe taken)."""

from __future__ import annotations

import pytest

from batgate.channels.http_carrier.answers import (
    AnswerRules,
    KeyRefused,
    MaybeTaken,
    NotTaken,
    Refused,
    Taken,
    Verdict,
)
from batgate.channels.http_carrier.extract import Source, parse_locator
from batgate.channels.http_carrier.presets import KANNEL

DOC = b'{"result": {"id": "p-1", "n": 42, "ok": true, "none": null}, "list": [{"a/b": 1, "~": 2}]}'

# (locator, source, value found)
FOUND = [
    ("json:/result/id", Source(DOC), "p-1"),
    ("json:/result/n", Source(DOC), "42"),
    ("json:/result/ok", Source(DOC), "true"),
    ("json:/result/none", Source(DOC), None),
    ("json:/result/missing", Source(DOC), None),
    ("json:/list/0/a~1b", Source(DOC), "1"),
    ("json:/list/0/~0", Source(DOC), "2"),
    ("json:/list/1", Source(DOC), None),
    ("json:/list/x", Source(DOC), None),
    ("json:", Source(b'"bare-id"'), "bare-id"),
    ("json:/id", Source(b"0: Accepted"), None),
    ("json:/id", Source(b""), None),
    ("regex:^0: Accepted", Source(b"0: Accepted for delivery"), "0: Accepted"),
    ("regex:id=(\\w+)", Source(b"OK id=abc123 queued"), "abc123"),
    ("regex:^OK", Source(b"ERR\nOK"), "OK"),  # multi-line: ^ is any line's start
    ("regex:^OK", Source(b"NOT OK"), None),
    ("param:type", Source(b"", [("ref", "m.0"), ("type", "1"), ("type", "2")]), "1"),
    ("param:type", Source(b"", [("ref", "m.0")]), None),
    ("header:X-Message-Id", Source(b"", (), {"x-message-id": "h-7"}), "h-7"),
]


@pytest.mark.parametrize(("text", "source", "value"), FOUND, ids=[f[0] for f in FOUND])
def test_locators_find_values(text: str, source: Source, value: str | None) -> None:
    assert parse_locator(text).find(source) == value


# (locator, a piece of the complaint)
BAD = [
    ("id", "a locator is one of json:…, regex:…, param:…, header:…"),
    ("xpath:/a", "a locator is one of"),
    ("json:id", "a JSON pointer starts with '/'"),
    ("json:/a~2b", "'~' is written ~0"),
    ("regex:(", "not a regular expression"),
    ("regex:", "say what after 'regex:'"),
    ("param:", "say what after 'param:'"),
]


@pytest.mark.parametrize(("text", "complaint"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_locator_says_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_locator(text)
    assert complaint in str(caught.value)


def test_an_answer_locator_reads_no_call_parameters() -> None:
    with pytest.raises(ValueError, match="json:…, regex:…, header:…"):
        AnswerRules.of(id="param:id")


JSON_RULES = AnswerRules.of(
    success="json:/status", success_values=["queued", "SENT"], id="json:/id"
)
KANNEL_RULES = AnswerRules.of(**KANNEL["answer"])
PLAIN = AnswerRules.of()

# (id, rules, status, headers, body, verdict)
VERDICTS: list[tuple[str, AnswerRules, int, dict[str, str], bytes, Verdict]] = [
    ("2xx taken", PLAIN, 200, {}, b"", Taken(None)),
    ("201 taken", PLAIN, 201, {}, b"whatever", Taken(None)),
    ("json success", JSON_RULES, 200, {}, b'{"status": "Queued", "id": 7}', Taken("7")),
    ("json success, no id", JSON_RULES, 200, {}, b'{"status": "sent"}', Taken(None)),
    (
        "json condition fails",
        JSON_RULES,
        200,
        {},
        b'{"status": "error", "message": "bad number"}',
        Refused(
            'not accepted by the carrier: HTTP 200: {"status": "error", "message": "bad number"}'
        ),
    ),
    ("kannel accepted", KANNEL_RULES, 202, {}, b"0: Accepted for delivery", Taken(None)),
    ("kannel queued", KANNEL_RULES, 202, {}, b"3: Queued for later delivery", Taken(None)),
    (
        "kannel not routable",
        KANNEL_RULES,
        403,
        {},
        b"Not routable. Do not try again.",
        Refused("refused by the carrier: HTTP 403: Not routable. Do not try again."),
    ),
    (
        "kannel authorization",
        KANNEL_RULES,
        403,
        {},
        b"Authorization failed for sendsms",
        KeyRefused(
            "the carrier refused our credentials: HTTP 403: Authorization failed for sendsms"
        ),
    ),
    (
        "kannel temporal failure",
        KANNEL_RULES,
        503,
        {},
        b"Temporal failure, try again later.",
        NotTaken(
            "the carrier could not take it now: HTTP 503: Temporal failure, try again later.", None
        ),
    ),
    (
        "kannel missing receiver",
        KANNEL_RULES,
        400,
        {},
        b"Missing receiver number, rejected",
        Refused("refused by the carrier: HTTP 400: Missing receiver number, rejected"),
    ),
    ("401", PLAIN, 401, {}, b"", KeyRefused("the carrier refused our credentials: HTTP 401")),
    (
        "429 with Retry-After",
        PLAIN,
        429,
        {"Retry-After": "7"},
        b"slow down",
        NotTaken("throttled by the carrier: HTTP 429: slow down", 7.0),
    ),
    ("429 bare", PLAIN, 429, {}, b"", NotTaken("throttled by the carrier: HTTP 429", 1.0)),
    (
        "503 with Retry-After",
        PLAIN,
        503,
        {"retry-after": "3"},
        b"",
        NotTaken("the carrier could not take it now: HTTP 503", 3.0),
    ),
    ("502", PLAIN, 502, {}, b"", NotTaken("the carrier could not take it now: HTTP 502", None)),
    ("504", PLAIN, 504, {}, b"", NotTaken("the carrier could not take it now: HTTP 504", None)),
    ("408", PLAIN, 408, {}, b"", NotTaken("the carrier could not take it now: HTTP 408", None)),
    (
        "500",
        PLAIN,
        500,
        {},
        b"<html>\n  oops\n</html>",
        MaybeTaken("the carrier failed, maybe after taking it: HTTP 500: <html> oops </html>"),
    ),
    ("302", PLAIN, 302, {"Location": "/x"}, b"", Refused("refused by the carrier: HTTP 302")),
    ("404", PLAIN, 404, {}, b"", Refused("refused by the carrier: HTTP 404")),
]


@pytest.mark.parametrize(
    ("rules", "status", "headers", "body", "verdict"),
    [v[1:] for v in VERDICTS],
    ids=[v[0] for v in VERDICTS],
)
def test_what_an_answer_means(
    rules: AnswerRules, status: int, headers: dict[str, str], body: bytes, verdict: Verdict
) -> None:
    assert rules.verdict(status, headers, body) == verdict


def test_a_long_answer_is_cut_in_the_reason() -> None:
    verdict = PLAIN.verdict(400, {}, b"x" * 5000)
    assert isinstance(verdict, Refused)
    assert verdict.reason.endswith("x" * 200 + "…")
