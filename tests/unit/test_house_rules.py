"""Rules of the code base that a linter does not check, each with the reason it exists."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "batgate"


def test_no_asyncio_wait_for_in_the_product() -> None:
    """On Python 3.11, asyncio.wait_for can drop a cancellation that meets the awaited
    result (CPython gh-86296): a worker then ran on after Engine.stop cancelled it, and
    the stop never ended. `async with asyncio.timeout(…)` waits in the caller's task."""
    found = [
        f"{path.relative_to(SRC)}:{n}"
        for path in sorted(SRC.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bwait_for\(", line) and not line.lstrip().startswith("#")
    ]
    assert found == []


def test_the_cli_loads_only_what_a_command_needs() -> None:
    """Every `batgate` command starts a Python process (and the tests start hundreds):
    the web framework, the HTTP server's and clients' stacks, the migration tool and the
    PostgreSQL driver are imported by the commands that use them, not by all."""
    import subprocess
    import sys

    heavy = ("fastapi", "aiohttp", "alembic", "asyncpg", "uvloop")
    probe = f"import sys, batgate.cli.main; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
