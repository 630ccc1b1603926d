"""The OpenAPI document tells the truth: schemathesis holds a running server to `/openapi.json`.

`st run` (schemathesis 4) against the shared fast server, with every check, in every
phase: the document's examples, coverage (edge and invalid values of every field),
fuzzing (random valid and invalid requests) and stateful sequences along the
document's links (send → status, message list, bulk status; page → next page).
It fails on anything the document does not say: a 5xx, an undocumented status, a
body or header off its schema, a wrong content type, a request the schema calls
invalid answered 2xx (or a valid one refused), an unsupported method not answered
405 with `Allow`, credentials ignored, one account reading another's message.

Bounded and deterministic: `MAX_EXAMPLES` per operation, generation derandomized
(`generation.deterministic`: the same requests on every run), one worker.

No generated request makes the server call out: a message's `callbackUrl` is the
only address the server would contact on a request's say-so. The document offers
only `http://127.0.0.1:9/hook` as its example, which the server refuses (loopback),
and gives the field no `uri` format, so other generated values are arbitrary strings,
not URLs of real hosts. Each test checks afterwards that none of its messages was
stored with a `callbackUrl`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from databases import raw_connection

if TYPE_CHECKING:
    from conftest import Server

# The runs are bounded by their numbers of examples; the timeouts only stop a hung one
# (on a busy machine a run takes twice as long as on a quiet one).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ST = Path(sys.executable).parent / "st"
MAX_EXAMPLES = 100  # per operation, in the fuzzing phase
STATEFUL_SCENARIOS = 20  # sequences along the links (each of several requests)
BASIC_EXAMPLES = 10  # the runs with HTTP Basic credentials: examples and fuzzing only
_TIMEOUT = 240.0  # below the tests' 300 s


def _config(max_examples: int, auth: str, *, every_phase: bool = True) -> str:
    """schemathesis.toml: every check, every phase (or examples and fuzzing), derandomized."""
    if every_phase:
        phases = f"[phases.stateful]\ngeneration.max-examples = {STATEFUL_SCENARIOS}\n"
    else:
        phases = "[phases.coverage]\nenabled = false\n[phases.stateful]\nenabled = false\n"
    return f"""\
color = false
workers = 1
request-timeout = 30
# Hypothesis's timing health check would make the run depend on the machine's load.
suppress-health-check = ["too_slow"]
{auth}
[generation]
max-examples = {max_examples}
deterministic = true

{phases}
[checks]
enabled = true

# What batgate answers a request the document calls invalid (schemathesis's default
# list lacks 413: more messages or ids than the maximum, or a body too large).
[checks.negative_data_rejection]
expected-statuses = [400, 401, 404, 405, 413, 415, 422, 429]

# The same Idempotency-Key with another body is refused (422 IDEMPOTENCY_KEY_REUSED,
# documented); generated keys repeat, and a JSON Schema cannot say "unique".
[[operations]]
include-operation-id = "sendMessages"
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 422, 429]
"""


def _wfc(*users: tuple[str, str]) -> dict[str, Any]:
    """A Web Fuzzing Commons auth document: one identity per (name, API key)."""
    return {
        "auth": [
            {"name": name, "fixedHeaders": [{"name": "X-Authorization-Key", "value": key}]}
            for name, key in users
        ]
    }


def _run(server: Server, workdir: Path, config: str) -> tuple[float, dict[str, Any]]:
    """`st run` against the server's document; (seconds, its JSON report). Fails on
    any finding, and unless the credentials worked (sends answered 2xx)."""
    config_file = workdir / "schemathesis.toml"
    config_file.write_text(config)
    report = workdir / "report.json"
    command = [str(ST), "--config-file", str(config_file), "run", "--no-color"]
    command += ["--report", "json", "--report-json-path", str(report)]
    command.append(f"{server.base_url}/openapi.json")
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    took = time.monotonic() - started
    output = done.stdout + done.stderr
    # The report's curl lines can be long (a body of 1001 messages): its end is the summary.
    assert done.returncode == 0, f"schemathesis found problems ({took:.0f} s):\n{output[-20000:]}"
    result: dict[str, Any] = json.loads(report.read_text())
    assert result["complete"] and not result["warnings"]["missing_auth"], output
    sends = result["valid_rates"]["POST /bat/messagelist"]
    assert sum(phase["accepted"] for phase in sends.values()) > 0, output
    return took, result


def _callbacks_stored(server: Server, *usernames: str) -> list[str]:
    """The callbackUrl of every message the accounts have: none may have been accepted
    (the document's only example is refused, generated strings are not URLs)."""
    with raw_connection(server.env["BATGATE_DATABASE_URL"]) as db:
        found = []
        for username in usernames:
            rows = db.execute(
                "SELECT m.callback_url FROM messages m JOIN accounts a ON a.id = m.account_id"
                " WHERE a.username = ? AND m.callback_url IS NOT NULL",
                (username,),
            ).fetchall()
            found += [str(url) for (url,) in rows]
    return found


def test_the_document_holds_with_the_key_header(fast_server: Server, tmp_path: Path) -> None:
    """All checks, stateful included; a second account as the peer that must not see
    the first one's messages (object-level authorization)."""
    owner = fast_server.create_account("openapi")
    peer = fast_server.create_account("openapipeer")
    users = _wfc(("owner", owner.api_key), ("peer", peer.api_key))
    (tmp_path / "auth.json").write_text(json.dumps(users))
    auth = '[auth.wfc]\npath = "auth.json"\nuser = "owner"\npeers = ["owner", "peer"]\n'

    took, result = _run(fast_server, tmp_path, _config(MAX_EXAMPLES, auth))

    assert _callbacks_stored(fast_server, owner.username, peer.username) == []

    assert {name: phase["status"] for name, phase in result["phases"].items()} == {
        "examples": "success",
        "coverage": "success",
        "fuzzing": "success",
        "stateful": "success",
    }
    print(f"schemathesis, key header: {took:.1f} s")


@pytest.mark.parametrize("login", ["password", "key"])
def test_the_document_holds_with_basic_credentials(
    fast_server: Server, tmp_path: Path, login: str
) -> None:
    """The same, smaller, with HTTP Basic: username and password, or "@" and the key."""
    account = fast_server.create_account("openapibasic", password="s3cret-Pa55")
    username, password = (
        (account.username, "s3cret-Pa55") if login == "password" else ("@", account.api_key)
    )
    auth = f'[auth.openapi.basic]\nusername = "{username}"\npassword = "{password}"\n'

    took, _ = _run(fast_server, tmp_path, _config(BASIC_EXAMPLES, auth, every_phase=False))

    assert _callbacks_stored(fast_server, account.username) == []

    print(f"schemathesis, Basic ({login}): {took:.1f} s")
