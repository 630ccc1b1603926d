"""Opt-out (SPEC §11): the keywords, the numbers a suppression list holds, and the
rule that a send to a suppressed number is rejected. Pure: no I/O.

- Keywords: a text whose *whole* content is an opt-out keyword (STOP, STOPALL,
  UNSUBSCRIBE, CANCEL, END, QUIT, СТОП, ВІДПИСАТИСЯ, ОТПИСАТЬСЯ) suppresses its
  sender; a lift keyword (START, UNSTOP, СТАРТ) lifts it. Compared after Unicode
  compatibility normalisation (NFKC: full-width letters are letters) and case
  folding; spaces, punctuation and invisible characters (zero-width spaces, a
  byte-order mark) around the word are ignored, anything else is not — "STOP
  please", "STOP ALL" and "STOP 🙏" are ordinary messages.
- Numbers: exactly what a send's `to` must look like (E.164 form: `+` and 8-15
  digits, the first not 0), so that a listed number is the very string a message's
  recipient is stored as. Not checked against numbering plans: a number the
  plans do not know yet can be suppressed all the same (sends to it are refused
  as INVALID_RECIPIENT today, and as OPTED_OUT once the plans know it).
- A message is OPTED_OUT when any step of its chain goes to a suppressed number
  (a fallback step may have a `to` of its own).
- CSV files (`batgate suppressions import`): one number per row in the first
  column (further columns are ignored, so an export can be imported again),
  surrounding spaces ignored, blank rows skipped; a first row without any digit is
  a header. Each bad row is reported by its line number; the good ones are kept.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from batgate.domain.checks import json_type, show
from batgate.domain.messages import ErrorCode, NewMessage, Rejection, Step
from batgate.domain.phones import is_e164_form


class Keyword(StrEnum):
    """What an inbound text asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


class Source(StrEnum):
    """How a number came onto an account's suppression list."""

    API = "api"  # POST /bat/suppressions
    CLI = "cli"  # batgate suppressions add
    IMPORT = "import"  # batgate suppressions import
    KEYWORD = "keyword"  # an inbound opt-out keyword


@dataclass(frozen=True, slots=True)
class Suppression:
    """One number on one account's suppression list."""

    number: str
    source: str
    created_at: float


OPT_OUT_KEYWORDS: Final = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "СТОП", "ВІДПИСАТИСЯ", "ОТПИСАТЬСЯ"}
)
OPT_IN_KEYWORDS: Final = frozenset({"START", "UNSTOP", "СТАРТ"})

_KEYWORDS: Final = {
    **{word.casefold(): Keyword.OPT_OUT for word in OPT_OUT_KEYWORDS},
    **{word.casefold(): Keyword.OPT_IN for word in OPT_IN_KEYWORDS},
}
_LONGEST: Final = max(map(len, _KEYWORDS))
# Unicode categories ignored around a keyword: punctuation (P*), separators (Z*:
# spaces, NBSP), controls (Cc: tabs, newlines) and format characters (Cf: zero-width
# spaces, the byte-order mark).
_IGNORED: Final = ("P", "Z", "Cc", "Cf")


def keyword_of(text: str) -> Keyword | None:
    """`Keyword.OPT_OUT` or `Keyword.OPT_IN` when the whole text is such a keyword
    (case-insensitive, surrounding spaces and punctuation ignored); None otherwise."""
    word = _trimmed(text)
    if len(word) > 2 * _LONGEST:  # no keyword, whatever normalising does: not looked at
        return None
    return _KEYWORDS.get(_trimmed(unicodedata.normalize("NFKC", word)).casefold())


def _trimmed(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _ignored(text[start]):
        start += 1
    while end > start and _ignored(text[end - 1]):
        end -= 1
    return text[start:end]


def _ignored(char: str) -> bool:
    return unicodedata.category(char).startswith(_IGNORED)


# -- numbers ---------------------------------------------------------------------------


def number_problem(value: object) -> str | None:
    """Why `value` cannot be on a suppression list (a sentence naming it); None when
    it can: a string in E.164 form, as a send's `to` is stored."""
    if not isinstance(value, str):
        return f"must be a string, got {json_type(value)}"
    if not is_e164_form(value):
        return f"{show(value)} is not an E.164 number ('+' and 8-15 digits, the first not 0)"
    return None


# -- the send path ---------------------------------------------------------------------

Judged = NewMessage | Rejection


def recipients(judged: Iterable[Judged]) -> set[str]:
    """Every number the accepted messages of a batch would go to (fallbacks' too)."""
    return {step.to for j in judged if isinstance(j, NewMessage) for step in j.steps}


def screened(judged: Sequence[Judged], suppressed: set[str] | frozenset[str]) -> list[Judged]:
    """`judged`, with each message to a suppressed number rejected as OPTED_OUT."""
    if not suppressed:
        return list(judged)
    return [_screened(j, suppressed) for j in judged]


def _screened(judged: Judged, suppressed: set[str] | frozenset[str]) -> Judged:
    if isinstance(judged, Rejection):
        return judged
    for index, step in enumerate(judged.steps):
        if step.to in suppressed:
            where = "to" if index == 0 else f"fallback[{index - 1}]: to"
            return Rejection(
                ErrorCode.OPTED_OUT,
                f"{where}: {step.to} has opted out of this account's messages "
                "(it is on the account's suppression list)",
            )
    return judged


def as_stored(valid: Sequence[Judged], stored: Sequence[tuple[Step, ...]]) -> list[Judged]:
    """How a batch was judged when it was stored, from its stored chains (in order): a
    valid message whose chain is the next stored one was accepted, one that is not was
    opted out then (the suppression list may have changed since)."""
    chains = iter(stored)
    following = next(chains, None)
    judged: list[Judged] = []
    for j in valid:
        if isinstance(j, NewMessage):
            if j.steps == following:
                following = next(chains, None)
            else:
                j = _screened(j, {step.to for step in j.steps})
        judged.append(j)
    return judged


# -- CSV import ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int  # 1-based, as an editor shows it
    value: str
    problem: str


@dataclass(frozen=True, slots=True)
class CsvNumbers:
    numbers: list[str]  # in file order, each once
    bad: list[BadRow]
    rows: int  # rows read, good and bad (not the header, not blank ones)
    header: bool  # the first row was taken as a header


def read_csv_numbers(lines: Iterable[str]) -> CsvNumbers:
    """The numbers of a CSV file's lines (see the module's notes), and its bad rows."""
    numbers: dict[str, None] = {}
    bad: list[BadRow] = []
    header = False
    first = True
    rows = 0
    reader = csv.reader(lines)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a broken row (an unclosed quote): reported, skipped
            bad.append(BadRow(reader.line_num, "", f"not readable as CSV: {exc}"))
            rows += 1
            continue
        cell = row[0].strip() if row else ""
        if not any(c.strip() for c in row):
            continue  # a blank row
        if first and not any(c.isdigit() for c in cell):
            header = True
        elif (problem := number_problem(cell)) is None:
            numbers[cell] = None
            rows += 1
        else:
            bad.append(BadRow(reader.line_num, cell, problem))
            rows += 1
        first = False
    return CsvNumbers(list(numbers), bad, rows, header)
