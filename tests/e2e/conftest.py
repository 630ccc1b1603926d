"""End-to-end harness: real `batgate serve` processes on free ports, driven over HTTP.

Every server gets a fresh SQLite file in a temporary directory and an environment
without any inherited ``BATGATE_*`` variable, so a test sees exactly the settings
its fixture chose. Accounts are created with the real CLI against the same file.
Servers are always stopped in fixture teardown (terminate, then kill on timeout).

While a test polls a message, the harness checks the SPEC §3 invariants on every
answer: the status never goes backwards, a final status never changes, `cost`
appears exactly when the status is final, and per-channel statuses never go back.

Webhook tests get receivers (receiver.py, each in a process of its own, logging
every request it gets) from `make_receiver` / `receiver`, and servers with quick
webhook retries from `webhook_server` / `start_webhook_server`.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import FINAL, RATES, Trace

from databases import Databases

BATGATE = Path(sys.executable).parent / "batgate"

# The shared server: a quick sandbox, short retries, no rate limit, short auth cache
# (so that disabling an account shows within a second).
FAST = {
    "BATGATE_SANDBOX__DELIVERY_DELAY": "0.3",
    "BATGATE_SANDBOX__SLOW_DELAY": "2",
    "BATGATE_DISPATCHER__RETRY_DELAYS": "[0.2,0.2]",
    "BATGATE_DISPATCHER__POLL_INTERVAL": "0.05",
    "BATGATE_RATE_LIMIT__ENABLED": "false",
    "BATGATE_AUTH_CACHE_SECONDS": "0.5",
    # Many tests share a server and try wrong credentials on purpose: login throttling
    # has a server of its own (test_auth.py).
    "BATGATE_AUTH__FAILURES_PER_ADDRESS": "1000000",
    "BATGATE_AUTH__FAILURES_PER_USERNAME": "1000000",
    "BATGATE_RATES": json.dumps([{"channel": c, "price": p} for c, p in RATES.items()]),
}

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def batgate_env(database_url: str, settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment: ours minus every BATGATE_* variable, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATGATE_")}
    env["BATGATE_DATABASE_URL"] = database_url
    env.update(settings or {})
    return env


def run_cli(
    env: Mapping[str, str], *args: str, cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(BATGATE), *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"batgate {' '.join(args)} exited {done.returncode}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
    return done


@dataclass(frozen=True)
class Account:
    username: str
    api_key: str
    webhook_secret: str
    password: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Authorization-Key": self.api_key}


class Server:
    """One running `batgate serve` process and its database."""

    # The `batgate serve` process (set by `running_server`), e.g. to kill it hard.
    proc: subprocess.Popen[bytes] | None = None
    log: Path  # its output (set by `running_server`)

    def __init__(self, workdir: Path, env: dict[str, str], port: int) -> None:
        self.workdir = workdir
        self.env = env
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.base_url, timeout=30.0)
        self._names = itertools.count(1)
        # Configured prices per part by channel, when the fixture set them.
        self.rates: dict[str, float] = {
            r["channel"]: r["price"] for r in json.loads(env.get("BATGATE_RATES", "[]"))
        }

    # -- CLI ------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args, cwd=self.workdir, check=check)

    def create_account(
        self,
        prefix: str = "acct",
        *,
        password: str | None = None,
        currency: str | None = None,
        webhook_url: str | None = None,
    ) -> Account:
        """A new account with a unique name starting with `prefix`, made by the real CLI."""
        username = f"{prefix}{next(self._names)}"
        args = ["accounts", "create", username]
        if password is not None:
            args += ["--password", password]
        if currency is not None:
            args += ["--currency", currency]
        if webhook_url is not None:
            args += ["--webhook-url", webhook_url]
        out = json.loads(self.cli(*args).stdout)
        return Account(username, out["apiKey"], out["webhookSecret"], password)

    # -- HTTP -----------------------------------------------------------------

    def send(self, account: Account, messages: Any) -> dict[str, Any]:
        """POST a batch (a list is wrapped in {"messages": ...}); the 200 answer."""
        body = {"messages": messages} if isinstance(messages, list) else messages
        response = self.http.post("/bat/messagelist", json=body, headers=account.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def send_one(self, account: Account, message: dict[str, Any]) -> dict[str, Any]:
        """Send one message that must be accepted; its entry of the answer."""
        answer = self.send(account, [message])
        entry = dict(answer["messages"][0])
        assert entry["status"] == "accepted", entry
        entry["messagelistId"] = answer["messagelistId"]
        return entry

    def status(self, account: Account, message_id: str) -> dict[str, Any]:
        response = self.http.get(f"/bat/message/{message_id}", headers=account.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_final(
        self, account: Account, message_id: str, timeout: float = 30.0, interval: float = 0.05
    ) -> Trace:
        """Poll until the status is final; the trace of all answers (invariants checked)."""
        return self.wait_all(account, [message_id], timeout, interval)[message_id]

    def wait_all(
        self, account: Account, message_ids: list[str], timeout: float, interval: float = 0.05
    ) -> dict[str, Trace]:
        """Poll several messages until all are final or `timeout` passes; their traces."""
        traces = {mid: Trace(mid) for mid in message_ids}
        start = time.monotonic()
        pending = list(message_ids)
        while pending:
            for mid in list(pending):
                traces[mid].add(self.status(account, mid), time.monotonic() - start)
                if traces[mid].final["deliverystatus"] in FINAL:
                    pending.remove(mid)
            if not pending:
                break
            if time.monotonic() - start > timeout:
                late = {mid: traces[mid].statuses for mid in pending}
                raise AssertionError(f"not final within {timeout} s: {late}")
            time.sleep(interval)
        return traces

    @staticmethod
    def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
        """The response is `status` with exactly the SPEC §6 body and error `code`."""
        assert response.status_code == status, (response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message"}, body
        assert body["error"]["code"] == code, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
        return dict(body)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=_STOP_TIMEOUT)


def _wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> bool:
    """True once our process answers /healthz with 200; False if the port was taken
    (by another process, or answered by another's server); raises otherwise."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")
            if "address already in use" in text.lower():
                return False
            raise RuntimeError(f"batgate serve exited {proc.returncode}:\n{text}")
        try:
            answer = httpx.get(f"{base_url}/healthz", timeout=1.0)
        except httpx.TransportError:
            pass
        else:
            if answer.status_code == 200:
                # Another test's server may hold the port (two free_port() calls can
                # return the same one): only our own process counts.
                return answer.json().get("pid") == proc.pid
        time.sleep(0.05)
    raise RuntimeError(f"batgate serve not healthy in {_START_TIMEOUT} s:\n{log.read_text()}")


@contextmanager
def running_server(
    workdir: Path,
    settings: Mapping[str, str] | None = None,
    database_url: str | None = None,
    *options: str,
) -> Iterator[Server]:
    """Start `batgate serve [options]` on a free port, on `database_url` (default: a file
    in `workdir`)."""
    env = batgate_env(database_url or f"sqlite:///{workdir / 'batgate.db'}", settings)
    for attempt in itertools.count(1):
        port = _free_port()
        log = workdir / f"server-{attempt}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(BATGATE), "serve", "--port", str(port), *options],
                env=env,
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            healthy = _wait_healthy(proc, f"http://127.0.0.1:{port}", log)
        except BaseException:
            _stop(proc)
            raise
        if not healthy:
            _stop(proc)
            if attempt >= 3:
                raise RuntimeError(f"no free port after {attempt} attempts:\n{log.read_text()}")
            continue
        server = Server(workdir, env, port)
        server.proc = proc
        server.log = log
        try:
            yield server
        finally:
            server.http.close()
            _stop(proc)
        return


def _workdir_and_database(
    tmp_path_factory: pytest.TempPathFactory, name: str, backend: str, databases: Databases
) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp(f"{name}-{backend}")
    return workdir, databases.url(backend, workdir)


@contextmanager
def server_starter() -> Iterator[Callable[..., Server]]:
    """`running_server` as a function; every server it started stops when the block ends."""
    with ExitStack() as stack:

        def start(
            workdir: Path,
            settings: Mapping[str, str] | None = None,
            database_url: str | None = None,
            *options: str,
        ) -> Server:
            return stack.enter_context(running_server(workdir, settings, database_url, *options))

        yield start


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    """`running_server` as a function for tests; every server is stopped at the end."""
    with server_starter() as start:
        yield start


@pytest.fixture(scope="module")
def start_module_server() -> Iterator[Callable[..., Server]]:
    """`start_server` for a module's fixtures: its servers stop when the module ends."""
    with server_starter() as start:
        yield start


@pytest.fixture(scope="session")
def fast_server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, databases: Databases
) -> Iterator[Server]:
    """Shared by most tests: delivery in ~0.3 s, 0004 slow for 2 s, retries of 0.2 s."""
    workdir, url = _workdir_and_database(tmp_path_factory, "fast", backend, databases)
    with running_server(workdir, FAST, url) as server:
        yield server


@pytest.fixture(scope="session")
def alice(fast_server: Server) -> Account:
    """An account on the fast server with a password (for HTTP Basic)."""
    return fast_server.create_account("alice", password="s3cret-Pa55")


@pytest.fixture(scope="session")
def bob(fast_server: Server) -> Account:
    return fast_server.create_account("bob")


@pytest.fixture(scope="module")
def default_server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, databases: Databases
) -> Iterator[Server]:
    """Default settings: no timing, retry or rate-limit variables at all."""
    workdir, url = _workdir_and_database(tmp_path_factory, "default", backend, databases)
    with running_server(workdir, None, url) as server:
        yield server


@pytest.fixture(scope="module")
def slow_retry_server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, databases: Databases
) -> Iterator[Server]:
    """The fast sandbox, but a failed send is retried only after 6 s (TTL checks)."""
    settings = {**FAST, "BATGATE_DISPATCHER__RETRY_DELAYS": "[6,6]"}
    workdir, url = _workdir_and_database(tmp_path_factory, "slowretry", backend, databases)
    with running_server(workdir, settings, url) as server:
        yield server


@pytest.fixture(scope="module")
def limited_server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, databases: Databases
) -> Iterator[Server]:
    """Rate limit on: one request every 4 s per account, with bursts of 3.

    Slow enough that a loaded machine (Argon2 checks of HTTP Basic take a while)
    does not refill a token between four requests sent back to back.
    """
    settings = {
        **FAST,
        "BATGATE_RATE_LIMIT__ENABLED": "true",
        "BATGATE_RATE_LIMIT__RATE": "0.25",
        "BATGATE_RATE_LIMIT__BURST": "3",
    }
    workdir, url = _workdir_and_database(tmp_path_factory, "limited", backend, databases)
    with running_server(workdir, settings, url) as server:
        yield server


# Short limits of the HTTP connection, to see them act (api.server).
LIMITS = {
    "BATGATE_HTTP__HEADER_TIMEOUT": "1",
    "BATGATE_HTTP__BODY_TIMEOUT": "1",
    "BATGATE_HTTP__MAX_HEADERS": "50",
    "BATGATE_HTTP__MAX_HEADER_BYTES": "8192",
    "BATGATE_HTTP__MAX_URL_BYTES": "2048",
}


@pytest.fixture(scope="module")
def limits_server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, databases: Databases
) -> Iterator[Server]:
    """The fast server's settings, with short HTTP limits (`LIMITS`)."""
    workdir, url = _workdir_and_database(tmp_path_factory, "limits", backend, databases)
    with running_server(workdir, {**FAST, **LIMITS}, url) as server:
        yield server


@dataclass(frozen=True)
class Cli:
    """The `batgate` command against a database of its own (no server)."""

    workdir: Path
    database_url: str
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args, cwd=self.workdir, check=check)


@pytest.fixture
def fresh_cli(tmp_path: Path, backend: str, databases: Databases) -> Cli:
    """The CLI on a database without any table yet (an empty PostgreSQL database, or no file)."""
    url = databases.url(backend, tmp_path, migrated=False)
    return Cli(tmp_path, url, batgate_env(url))


# -- webhook receiver -----------------------------------------------------------

RECEIVER = Path(__file__).with_name("receiver.py")


@dataclass(frozen=True)
class Hook:
    """One request the receiver got: when, where, headers, body, and how it answered."""

    t: float
    path: str
    headers: dict[str, str]
    body: bytes
    attempt: int  # the receiver's count for this webhook-id (since it last started)
    answer: int | str  # the status code, or "hang"

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def acked(self) -> bool:
        return isinstance(self.answer, int) and 200 <= self.answer < 300


class Receiver:
    """`receiver.py` in a process of its own, on a fixed port so it can stop and start.

    Every request goes to a JSON-lines log that outlives the process; `hooks()`
    reads it back in arrival order. `rules` are those of receiver.py.
    """

    def __init__(self, workdir: Path, rules: Mapping[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.rules = dict(rules or {})
        self.log = workdir / f"receiver-{self.port}.jsonl"
        self.log.touch()
        self.proc: subprocess.Popen[bytes] | None = None
        self._starts = itertools.count(1)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, rules: Mapping[str, Any] | None = None) -> None:
        assert not self.running, "the receiver runs already"
        if rules is not None:
            self.rules = dict(rules)
        out = self.workdir / f"receiver-{self.port}-{next(self._starts)}.out"
        with out.open("wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, str(RECEIVER), "--port", str(self.port), "--log", str(self.log)]
                + ["--rules", json.dumps(self.rules)],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"receiver exited {self.proc.returncode}:\n{out.read_text()}")
            try:
                if httpx.get(self.url("/_ping"), timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"receiver not up in {_START_TIMEOUT} s:\n{out.read_text()}")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def set_rules(self, rules: Mapping[str, Any]) -> None:
        self.rules = dict(rules)
        response = httpx.post(self.url("/_rules"), json=self.rules, timeout=5.0)
        assert response.status_code == 200, response.text

    def hooks(self, path: str | None = None) -> list[Hook]:
        """Every request so far in arrival order (only those to `path`, when given)."""
        found = []
        for line in self.log.read_text().splitlines():
            try:
                raw = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line, still being written
            hook = Hook(
                raw["t"],
                raw["path"],
                raw["headers"],
                base64.b64decode(raw["body"]),
                raw["attempt"],
                raw["answer"],
            )
            if path is None or hook.path == path:
                found.append(hook)
        return found

    def wait(
        self,
        done: Callable[[list[Hook]], bool],
        timeout: float,
        what: str,
        path: str | None = None,
    ) -> list[Hook]:
        """Poll the log until `done(hooks)`; the hooks then. Fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            hooks = self.hooks(path)
            if done(hooks):
                return hooks
            if time.monotonic() > deadline:
                seen = [(h.path, h.webhook_id, h.answer) for h in hooks[-20:]]
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}; "
                    f"{len(hooks)} requests, the last: {seen}"
                )
            time.sleep(0.05)


@contextmanager
def running_receiver(
    workdir: Path, rules: Mapping[str, Any] | None = None, *, start: bool = True
) -> Iterator[Receiver]:
    """A receiver (started unless `start` is False), always stopped afterwards."""
    receiver = Receiver(workdir, rules)
    try:
        if start:
            receiver.start()
        yield receiver
    finally:
        receiver.stop()


# Webhook retries every ~0.2 s that never give up within a test, quick polling.
WEBHOOKS_QUICK = {
    "BATGATE_WEBHOOKS__RETRY_DELAYS": "[0.2,0.2]",
    "BATGATE_WEBHOOKS__REPEAT_EVERY": "0.2",
    "BATGATE_WEBHOOKS__GIVE_UP_AFTER": "600",
    "BATGATE_WEBHOOKS__POLL_INTERVAL": "0.05",
    "BATGATE_WEBHOOKS__TIMEOUT": "2",
    # The receivers listen on 127.0.0.1: a message's callbackUrl may point there.
    "BATGATE_WEBHOOKS__ALLOW_PRIVATE_CALLBACKS": '["127.0.0.1/32"]',
}


@pytest.fixture(scope="module")
def webhook_server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, databases: Databases
) -> Iterator[Server]:
    """The fast server's settings plus quick webhook retries (`WEBHOOKS_QUICK`)."""
    settings = {**FAST, **WEBHOOKS_QUICK}
    workdir, url = _workdir_and_database(tmp_path_factory, "webhooks", backend, databases)
    with running_server(workdir, settings, url) as server:
        yield server


@pytest.fixture
def start_webhook_server(
    backend: str, databases: Databases
) -> Iterator[Callable[[Path, Mapping[str, str]], Server]]:
    """Start servers with FAST + WEBHOOKS_QUICK + the given settings; all stopped at the end.

    Starting one again with the same `workdir` reuses its database (a restart).
    """
    urls: dict[Path, str] = {}
    with ExitStack() as stack:

        def start(workdir: Path, settings: Mapping[str, str], *options: str) -> Server:
            workdir.mkdir(parents=True, exist_ok=True)
            if workdir not in urls:
                urls[workdir] = databases.url(backend, workdir)
            merged = {**FAST, **WEBHOOKS_QUICK, **settings}
            return stack.enter_context(running_server(workdir, merged, urls[workdir], *options))

        yield start


@pytest.fixture
def make_receiver(tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    """Receivers (see `running_receiver`) that are all stopped at the end."""
    with ExitStack() as stack:

        def make(rules: Mapping[str, Any] | None = None, *, start: bool = True) -> Receiver:
            return stack.enter_context(running_receiver(tmp_path, rules, start=start))

        yield make


@pytest.fixture
def receiver(make_receiver: Callable[..., Receiver]) -> Receiver:
    """A running receiver that answers 200 to everything (until the test sets rules)."""
    return make_receiver()


# -- scale-out: API, worker and sandbox carrier processes of their own ---------------


@dataclass
class Started:
    """One process started by a `Fleet`: its name, its log, and its URL if it serves HTTP."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str | None = None
    command: tuple[str, ...] = ()  # `batgate` and its arguments, to start it again
    env: Mapping[str, str] | None = None

    def kill(self) -> None:
        """`kill -9`: no clean-up of any kind."""
        self.proc.kill()
        self.proc.wait(timeout=_STOP_TIMEOUT)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


class Fleet:
    """`batgate` processes of one test, sharing a database, all stopped when it ends.

    `serve` starts an API process (a `Server`, e.g. `--no-workers`), `sandbox` the
    sandbox carrier, `worker` a delivery engine; each on a free port where it serves
    HTTP, and each waited for until it is up.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Started] = []
        self._servers: list[Server] = []
        self._names = itertools.count(1)

    @staticmethod
    def env(database_url: str, settings: Mapping[str, str] | None = None) -> dict[str, str]:
        return batgate_env(database_url, settings)

    def serve(self, env: Mapping[str, str], *args: str) -> Server:
        started = self._http("serve", env, *args)
        assert started.url is not None
        server = Server(self.workdir, dict(env), int(started.url.rsplit(":", 1)[1]))
        server.proc = started.proc
        self._servers.append(server)
        return server

    def sandbox(self, env: Mapping[str, str], *args: str) -> Started:
        return self._http("sandbox", env, *args)

    def worker(self, env: Mapping[str, str], *args: str) -> Started:
        started = self._spawn("worker", env, *args)
        self._wait_running(started)
        return started

    def restart(self, proc: subprocess.Popen[bytes], timeout: float) -> tuple[Started, float]:
        """SIGTERM to a process of this fleet, then the same command again (an HTTP one
        on the same port), up and serving; the new process and how long the old one
        took to exit (it must within `timeout`)."""
        old = next(s for s in self.started if s.proc is proc)
        asked = time.monotonic()
        old.proc.terminate()
        try:
            old.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{old.name} did not exit within {timeout} s of SIGTERM:\n{old.log_text()[-3000:]}"
            ) from None
        took = time.monotonic() - asked
        assert old.env is not None
        new = self._spawn(old.command[0], old.env, *old.command[1:])
        new.url = old.url
        if new.url is not None:
            if not _wait_healthy(new.proc, new.url, new.log):
                raise RuntimeError(f"{new.name}: its port was taken:\n{new.log_text()}")
        else:
            self._wait_running(new)
        return new, took

    def _wait_running(self, started: Started) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while " running" not in started.log_text():
            if started.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"batgate worker did not start:\n{started.log_text()}")
            time.sleep(0.05)

    def logs(self, command: str) -> str:
        """The logs of every `command` process started, one after another."""
        return "".join(s.log_text() for s in self.started if s.name.startswith(f"{command}-"))

    def stop_all(self) -> None:
        for server in self._servers:
            server.http.close()
        for started in reversed(self.started):
            _stop(started.proc)

    def _http(self, command: str, env: Mapping[str, str], *args: str) -> Started:
        for _attempt in range(3):
            port = _free_port()
            started = self._spawn(command, env, *args, "--port", str(port))
            started.url = f"http://127.0.0.1:{port}"
            try:
                healthy = _wait_healthy(started.proc, started.url, started.log)
            except BaseException:
                _stop(started.proc)
                raise
            if healthy:
                return started
            _stop(started.proc)
        raise RuntimeError(f"batgate {command}: no free port after 3 attempts")

    def _spawn(self, command: str, env: Mapping[str, str], *args: str) -> Started:
        name = f"{command}-{next(self._names)}"
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(BATGATE), command, *args],
                env=dict(env),
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started = Started(name, proc, log, command=(command, *args), env=dict(env))
        self.started.append(started)
        return started


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Start `batgate` processes of any kind (see `Fleet`); all stopped at the end."""
    made = Fleet(tmp_path)
    try:
        yield made
    finally:
        made.stop_all()
