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
