"""SMSBAT's own examples: every message example of its help pages (sms.md, viber.md,
rcs.md, flashcall.md under docs/api/smsbat/) is accepted and delivered in the sandbox.

The examples are in ``smsbat_examples.json``, each with its page and heading and
exactly as documented, except placeholders that are not valid values (``+380XXXXXXXXX``
and the like), replaced by valid numbers and listed in its ``substituted``. An example
that is a whole request body (``body``) is sent as it is; a single message
(``message``) as ``{"messages": [message]}``.

All examples are sent at once, one request each, when the module starts; every
example is then a row of its own, which polls its messages until they are final.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

EXAMPLES: list[dict[str, Any]] = json.loads(
    Path(__file__).with_name("smsbat_examples.json").read_text(encoding="utf-8")
)

# Examples the SPEC rules out, with the reason (SPEC.md wins over the help pages).
# Examples not sent, with the reason (none: every documented example is accepted).
SKIPPED: dict[tuple[str, str], str] = {}


def example_id(example: dict[str, Any]) -> str:
    return f"{example['page']}: {example['heading']}"


def request_body(example: dict[str, Any]) -> dict[str, Any]:
    if "body" in example:
        return dict(example["body"])
    return {"messages": [example["message"]]}


def params() -> list[Any]:
    rows = []
    for example in EXAMPLES:
        reason = SKIPPED.get((example["page"], example["heading"]))
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        rows.append(pytest.param(example, id=example_id(example), marks=marks))
    return rows


@pytest.fixture(scope="module")
def answers(fast_server, alice) -> dict[str, httpx.Response]:
    """Every example not skipped, sent in a request of its own: the answers by id."""
    sent = {}
    for example in EXAMPLES:
        if (example["page"], example["heading"]) in SKIPPED:
            continue
        sent[example_id(example)] = fast_server.http.post(
            "/bat/messagelist", json=request_body(example), headers=alice.headers
        )
    return sent


@pytest.mark.parametrize("example", params())
def test_documented_example_is_accepted_and_delivered(fast_server, alice, answers, example):
    name = example_id(example)
    response = answers[name]
    assert response.status_code == 200, f"{name}: HTTP {response.status_code} {response.text}"
    messages = request_body(example)["messages"]
    entries = response.json()["messages"]
    assert len(entries) == len(messages), entries
    for i, (message, entry) in enumerate(zip(messages, entries, strict=True)):
        assert entry["status"] == "accepted", (
            f"{name}: message {i} rejected: {entry.get('error')} ({json.dumps(message)})"
        )
        assert entry["to"] == message["to"], entry
        if "customerMessageId" in message:
            assert entry["customerMessageId"] == message["customerMessageId"], entry
        if message["type"] == "flashcall":
            caller = message["messageData"]["callerId"]
            assert entry["callerId"] == caller, entry
            assert entry["pattern"] == "***" + caller[-6:], entry
    for i, entry in enumerate(entries):
        trace = fast_server.wait_final(alice, entry["messageId"])
        assert trace.final["deliverystatus"] == "delivered", (
            f"{name}: message {i} ended {trace.statuses}"
        )
        trace.assert_walk("delivered")


_PATH_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _at(doc: Any, path: str) -> Any:
    for key, index in _PATH_STEP.findall(path):
        doc = doc[int(index)] if index else doc[key]
    return doc


def test_examples_are_unique_and_their_substitutions_listed():
    ids = [example_id(e) for e in EXAMPLES]
    assert len(ids) == len(set(ids)), ids
    assert set(SKIPPED) <= {(e["page"], e["heading"]) for e in EXAMPLES}
    for example in EXAMPLES:
        assert ("body" in example) != ("message" in example), example_id(example)
        doc = example.get("body", example.get("message"))
        for sub in example["substituted"]:
            assert _at(doc, sub["path"]) == sub["used"] != sub["documented"], sub
        assert "XXX" not in json.dumps(doc), example_id(example)
