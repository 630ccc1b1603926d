"""domain.optout: the keywords of SPEC §11, the numbers a suppression list takes, the
OPTED_OUT rule of a send, and the CSV files `batgate suppressions import` reads."""

from __future__ import annotations

import pytest

from batgate.domain.messages import ErrorCode, MessageType, NewMessage, Rejection, Step
from batgate.domain.optout import (
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    BadRow,
    Keyword,
    as_stored,
    keyword_of,
    number_problem,
    read_csv_numbers,
    recipients,
    screened,
)

OUT, IN = Keyword.OPT_OUT, Keyword.OPT_IN


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # every keyword of the SPEC, as written there
        *[pytest.param(word, OUT, id=f"out-{word}") for word in sorted(OPT_OUT_KEYWORDS)],
        *[pytest.param(word, IN, id=f"in-{word}") for word in sorted(OPT_IN_KEYWORDS)],
        # case-insensitive, Latin and Cyrillic
        pytest.param("stop", OUT, id="lower"),
        pytest.param("Stop", OUT, id="title"),
        pytest.param("sToPaLl", OUT, id="mixed"),
        pytest.param("unsubscribe", OUT, id="unsubscribe-lower"),
        pytest.param("стоп", OUT, id="cyrillic-lower"),
        pytest.param("Відписатися", OUT, id="ukrainian-title"),
        pytest.param("отписаться", OUT, id="russian-lower"),
        pytest.param("старт", IN, id="cyrillic-start-lower"),
        pytest.param("unstop", IN, id="unstop-lower"),
        # surrounding spaces and punctuation ignored
        pytest.param("  STOP  ", OUT, id="spaces"),
        pytest.param("\tstop\r\n", OUT, id="tab-and-newline"),
        pytest.param("STOP!", OUT, id="exclamation"),
        pytest.param("...stop...", OUT, id="dots"),
        pytest.param('"STOP"', OUT, id="quotes"),
        pytest.param("«СТОП»", OUT, id="guillemets"),
        pytest.param("(start)", IN, id="parentheses"),
        pytest.param("¡Stop!", OUT, id="inverted-exclamation"),
        pytest.param("\u00a0STOP\u00a0", OUT, id="no-break-spaces"),
        pytest.param("\ufeffSTOP\u200b", OUT, id="bom-and-zero-width-space"),
        pytest.param("- END -", OUT, id="dashes-and-spaces"),
        # compatibility forms are the letters they stand for
        pytest.param("ＳＴＯＰ", OUT, id="fullwidth"),
        # not the whole text: an ordinary message
        pytest.param("STOP please", None, id="more-words"),
        pytest.param("please stop", None, id="words-before"),
        pytest.param("STOP ALL", None, id="inner-space"),
        pytest.param("S.T.O.P", None, id="inner-punctuation"),
        pytest.param("STOPP", None, id="misspelt"),
        pytest.param("STOP 🙏", None, id="emoji-is-not-punctuation"),
        pytest.param("STOP2", None, id="digit"),
        pytest.param("STARTS", None, id="longer-word"),
        pytest.param("", None, id="empty"),
        pytest.param("   ", None, id="blank"),
        pytest.param("!!!", None, id="only-punctuation"),
        pytest.param("Hello", None, id="hello"),
        pytest.param("STOP" + " " * 200 + "!", OUT, id="much-padding"),
        pytest.param("STOP" * 100, None, id="long-text"),
    ],
)
def test_keyword_of(text: str, expected: Keyword | None) -> None:
    assert keyword_of(text) == expected


def test_the_answers_are_the_strings_of_the_brief() -> None:
    assert keyword_of("STOP") == "opt_out"
    assert keyword_of("START") == "opt_in"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("+380501234567", None, id="ua"),
        pytest.param("+14155552671", None, id="us"),
        pytest.param("+12345678", None, id="eight-digits"),
        pytest.param("+123456789012345", None, id="fifteen-digits"),
        # E.164 form only, not the numbering plans: a number they do not know is taken
        pytest.param("+10000000000", None, id="not-in-the-plans"),
        pytest.param("380501234567", "is not an E.164 number", id="no-plus"),
        pytest.param("0501234567", "is not an E.164 number", id="national"),
        pytest.param("+0501234567", "is not an E.164 number", id="plus-zero"),
        pytest.param("+1234567", "is not an E.164 number", id="seven-digits"),
        pytest.param("+1234567890123456", "is not an E.164 number", id="sixteen-digits"),
        pytest.param("+380 50 123 4567", "is not an E.164 number", id="spaces"),
        pytest.param(" +380501234567", "is not an E.164 number", id="leading-space"),
        pytest.param("+380501234567\n", "is not an E.164 number", id="trailing-newline"),
        pytest.param("+３８０501234567", "is not an E.164 number", id="fullwidth-digits"),
        pytest.param("", "is not an E.164 number", id="empty"),
        pytest.param(380501234567, "must be a string, got number", id="json-number"),
        pytest.param(None, "must be a string, got null", id="null"),
        pytest.param(["+380501234567"], "must be a string, got array", id="array"),
    ],
)
def test_number_problem(value: object, problem: str | None) -> None:
    found = number_problem(value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
        if isinstance(value, str) and value:
            assert repr(value)[:20] in found, "the problem names the number"


def step(mtype: MessageType, to: str) -> Step:
    return Step(mtype, to, "Shop", "hi", None, 60, 1)


def message(to: str, *fallback_to: str) -> NewMessage:
    steps = [step(MessageType.VIBER_PROMO if fallback_to else MessageType.SMS, to)]
    steps += [step(MessageType.SMS, number) for number in fallback_to]
    return NewMessage(None, tuple(steps))


BAD = Rejection(ErrorCode.INVALID_RECIPIENT, "to: no")
A, B, C = "+380501234567", "+380671234567", "+447911123456"


@pytest.mark.parametrize(
    ("batch", "suppressed", "codes"),
    [
        pytest.param([message(A), message(B)], set(), [None, None], id="no-list"),
        pytest.param([message(A), message(B)], {A}, ["OPTED_OUT", None], id="one-of-two"),
        pytest.param([message(A), message(A)], {A}, ["OPTED_OUT", "OPTED_OUT"], id="twice"),
        pytest.param([message(B, C)], {C}, ["OPTED_OUT"], id="a-fallback-step's-own-to"),
        pytest.param([message(B, B)], {C}, [None], id="fallback-not-listed"),
        pytest.param([BAD, message(B)], {B}, ["INVALID_RECIPIENT", "OPTED_OUT"], id="kept"),
    ],
)
def test_screened(
    batch: list[NewMessage | Rejection], suppressed: set[str], codes: list[str | None]
) -> None:
    judged = screened(batch, suppressed)
    assert [j.code if isinstance(j, Rejection) else None for j in judged] == codes
    for before, after in zip(batch, judged, strict=True):
        if isinstance(after, NewMessage):
            assert after is before


def test_the_opted_out_message_names_the_number_and_the_step() -> None:
    [primary] = screened([message(A)], {A})
    [fallback] = screened([message(B, C)], {C})
    assert isinstance(primary, Rejection) and primary.message.startswith(f"to: {A} ")
    assert isinstance(fallback, Rejection) and fallback.message.startswith(f"fallback[0]: to: {C} ")


def test_recipients_are_every_step_of_the_accepted_messages() -> None:
    assert recipients([message(A), BAD, message(B, C)]) == {A, B, C}
    assert recipients([BAD]) == set()


@pytest.mark.parametrize(
    ("valid", "stored", "codes"),
    [
        pytest.param([message(A), message(B)], [A, B], [None, None], id="all-stored"),
        pytest.param([message(A), message(B)], [B], ["OPTED_OUT", None], id="first-opted-out"),
        pytest.param([message(A), message(B)], [A], [None, "OPTED_OUT"], id="last-opted-out"),
        pytest.param([message(A), message(A)], [], ["OPTED_OUT", "OPTED_OUT"], id="none-stored"),
        pytest.param([BAD, message(A)], [A], ["INVALID_RECIPIENT", None], id="rejections-kept"),
        # The same `to`, another chain: the stored chain tells them apart.
        pytest.param([message(A, C), message(A)], [A], ["OPTED_OUT", None], id="by-chain"),
    ],
)
def test_as_stored(
    valid: list[NewMessage | Rejection], stored: list[str], codes: list[str | None]
) -> None:
    """A replay whose first answer was not kept: which messages the first request stored
    is read from the chains it stored, in order, whatever the list says now."""
    chains = [message(to).steps for to in stored]
    judged = as_stored(valid, chains)
    assert [j.code if isinstance(j, Rejection) else None for j in judged] == codes


def csv_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


@pytest.mark.parametrize(
    ("text", "numbers", "bad_lines", "header"),
    [
        pytest.param(f"{A}\n{B}\n", [A, B], [], False, id="numbers-only"),
        pytest.param(f"number\n{A}\n", [A], [], True, id="header"),
        pytest.param(f"Phone Number,Name\n{A},Ann\n", [A], [], True, id="header-and-columns"),
        pytest.param(f"{A},api,2026-01-01T00:00:00Z\n", [A], [], False, id="an-export"),
        pytest.param(f"  {A}  \n\t{B}\n", [A, B], [], False, id="spaces-around"),
        pytest.param(f'"{A}"\n', [A], [], False, id="quoted"),
        pytest.param(f"{A}\n\n,\n{B}\n", [A, B], [], False, id="blank-rows-skipped"),
        pytest.param(f"\nnumber\n{A}\n", [A], [], True, id="header-after-a-blank-line"),
        pytest.param(f"{A}\n{A}\n", [A], [], False, id="repeats-once"),
        pytest.param(f"number\n{A}\n0501234567\n{B}\nabc\n", [A, B], [3, 5], True, id="bad"),
        pytest.param(f"{A}\nnumber\n", [A], [2], False, id="a-header-only-first"),
        pytest.param("380501234567\n", [], [1], False, id="no-plus-is-no-header"),
        pytest.param(f"{A}\r\n{B}\r\n", [A, B], [], False, id="crlf"),
        pytest.param("", [], [], False, id="empty-file"),
    ],
)
def test_read_csv_numbers(
    text: str, numbers: list[str], bad_lines: list[int], header: bool
) -> None:
    found = read_csv_numbers(csv_lines(text))
    assert found.numbers == numbers
    assert [row.line for row in found.bad] == bad_lines
    assert found.header is header


def test_a_bad_row_says_what_is_wrong() -> None:
    found = read_csv_numbers(csv_lines(f"{A}\n 0501234567 \n"))
    assert found.bad == [BadRow(2, "0501234567", number_problem("0501234567") or "")]
    assert found.rows == 2
