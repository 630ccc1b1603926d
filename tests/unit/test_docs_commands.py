"""Every `batgate …` command the README and docs/ show exists, with the options shown.

The commands are read from the shell blocks of the Markdown files (continued lines
joined, comments dropped) and checked against the real command line's help, in
process: the subcommand path must exist and every `--option` must be one of its own.
"""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from batgate.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```(?:sh|bash|console|shell)\n(.*?)^```", re.S | re.M)


def shell_lines(text: str) -> list[str]:
    """The logical lines of the shell blocks (backslash continuations joined)."""
    lines: list[str] = []
    for block in _BLOCK.findall(text):
        pending = ""
        for raw in block.splitlines():
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            lines.append(line.removeprefix("$ "))
    return lines


def batgate_commands() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        for line in shell_lines(doc.read_text()):
            if not line.startswith("batgate "):
                continue
            words = shlex.split(line, comments=True)
            found.append((f"{doc.name}: {line}", words[1:]))
    return found


@cache
def help_of(path: tuple[str, ...]) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def runs_alone(path: tuple[str, ...]) -> bool:
    """Whether the command group at `path` does something without a subcommand (as
    `batgate connectors` lists the connectors)."""
    command: Any = typer.main.get_command(app)
    for word in path:
        command = command.commands[word]
    return bool(getattr(command, "invoke_without_command", False))


def test_the_docs_show_commands() -> None:
    assert len(batgate_commands()) >= 20


@pytest.mark.parametrize(
    "words", [w for _, w in batgate_commands()], ids=[i for i, _ in batgate_commands()]
)
def test_a_documented_command_exists_with_its_options(words: list[str]) -> None:
    path: list[str] = []
    for word in words:
        code, text = help_of(tuple(path))
        assert code == 0, text
        if word.startswith("-") or "Commands" not in text:
            break
        code, _ = help_of((*path, word))
        assert code == 0, f"no command `batgate {' '.join([*path, word])}`"
        path.append(word)
    code, text = help_of(tuple(path))
    assert code == 0, text
    assert "Commands" not in text or runs_alone(tuple(path)), (
        f"`batgate {' '.join(path)}` needs a subcommand"
    )
    for option in (w.split("=", 1)[0] for w in words if w.startswith("--")):
        assert re.search(rf"{re.escape(option)}\b", text), (
            f"`batgate {' '.join(path)}` has no option {option}"
        )
