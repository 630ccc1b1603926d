"""Observability of real processes: /metrics, JSON logs with request ids, /readyz, workers.

Every test starts its own `batgate serve` (through `start_webhook_server`), so
the per-process counters start at zero and can be checked exactly. Metrics are
parsed with prometheus_client's own text parser, log lines with `json.loads`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from conftest import Receiver, Server

    StartServer = Callable[[Path, Mapping[str, str]], Server]
    MakeReceiver = Callable[..., Receiver]

pytestmark = pytest.mark.e2e

BATGATE = Path(sys.executable).parent / "batgate"
POSTGRES = os.environ.get("BATGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
FRESH_GAUGES = {"BATGATE_METRICS__CACHE_SECONDS": "0"}

NORMAL = "+380501234567"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# -- helpers ------------------------------------------------------------------------


def sms(to: str = NORMAL, **extra: Any) -> dict[str, Any]:
    return {"from": "batgate", "to": to, "type": "sms", "text": "Your code is 1234", **extra}


def scrape(base_url: str) -> Samples:
    response = httpx.get(f"{base_url}/metrics", timeout=10.0)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    return sum(
        v for (n, have), v in samples.items() if n == name and set(labels.items()) <= set(have)
    )


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def log_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's log, each of which must be one JSON object."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(p, dict) for p in parsed)
    return parsed


def server_log(server: Server) -> Path:
    return max(server.workdir.glob("server-*.log"), key=lambda p: p.stat().st_mtime)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready(base_url: str) -> httpx.Response:
    return httpx.get(f"{base_url}/readyz", timeout=10.0)


# -- /metrics and the logs of `batgate serve` ------------------------------------------


def test_metrics_and_json_logs_of_a_serving_process(
    tmp_path: Path, start_webhook_server: StartServer
) -> None:
    settings = {
        **FRESH_GAUGES,
        "BATGATE_ACCESS_LOG": "true",
        "BATGATE_LOG_FORMAT": "json",
    }
    server = start_webhook_server(tmp_path / "gateway", settings)
    account = server.create_account("metrics")
    answer = server.send(
        account,
        [
            sms(),
            sms(),
            sms(),
            sms("+380501230001"),  # undeliverable
            sms("+380501230002"),  # fails until the retries run out: permanenterror
            {
                "from": "batgate",
                "to": "+380501230003",  # not on Viber: delivered by the SMS fallback
                "type": "viber_promo",
                "text": "20% off",
                "fallback": {"type": "sms", "text": "20% off"},
            },
        ],
    )
    mids = [m["messageId"] for m in answer["messages"]]
    server.wait_all(account, mids, timeout=15)

    traced = server.http.get(
        f"/bat/message/{mids[0]}", headers=account.headers | {"X-Request-Id": "trace-e2e-1"}
    )
    assert traced.headers["x-request-id"] == "trace-e2e-1"
    assert server.http.get("/bat/message/nope", headers=account.headers).status_code == 404

    m = scrape(server.base_url)
    # What the dispatcher handed to channels and which statuses it wrote, by channel.
    assert value(m, "batgate_channel_sends_total", channel="sms", result="accepted") == 5
    assert value(m, "batgate_channel_sends_total", channel="viber", result="accepted") == 1
    assert value(m, "batgate_channel_sends_total", channel="sms", result="failed") == 3
    statuses = {
        (dict(labels)["status"], dict(labels)["channel"]): v
        for (name, labels), v in m.items()
        if name == "batgate_message_statuses_total"
    }
    assert statuses == {
        ("processing", "sms"): 4,
        ("processing", "viber"): 1,
        ("delivered", "sms"): 4,
        ("undeliverable", "sms"): 1,
        ("permanenterror", "sms"): 1,
    }
    # Receipts: 3 + 1 on SMS, and Viber's then SMS's for the fallback.
    assert value(m, "batgate_receipt_lag_seconds_count") == 6
    assert value(m, "batgate_receipt_lag_seconds_sum") < 6 * 5.0
    assert value(m, "batgate_dispatcher_lag_seconds_count") >= 6 + 3 + 1
    # Requests by route template and status; never a raw path.
    route = "/bat/message/{messageId}"
    requests = "batgate_http_request_duration_seconds_count"
    assert value(m, requests, method="POST", route="/bat/messagelist", status="200") == 1
    assert value(m, requests, method="GET", route=route, status="404") == 1
    assert value(m, requests, method="GET", route=route, status="200") >= len(mids) + 1
    labels = {v for (_, have) in m for _, v in have}
    assert not [mid for mid in mids if any(mid in label for label in labels)]
    # The database gauges: everything is final, no webhook URL.
    assert value(m, "batgate_database_up") == 1
    assert value(m, "batgate_queue_messages") == 0
    assert value(m, "batgate_queue_oldest_due_age_seconds") == 0
    assert value(m, "batgate_webhook_backlog_events") == 0
    assert value(m, "process_resident_memory_bytes") > 0

    lines = log_lines(server_log(server))
    assert any(r["logger"].startswith("uvicorn") for r in lines)  # uvicorn's own, as JSON
    access = [r for r in lines if r["logger"] == "batgate.access"]
    (line,) = [r for r in access if r.get("request_id") == "trace-e2e-1"]
    assert (line["method"], line["route"], line["status"]) == ("GET", route, 200)
    assert isinstance(line["account_id"], int) and line["duration_ms"] >= 0
    sends = [r for r in access if r["route"] == "/bat/messagelist"]
    assert len(sends) == 1 and sends[0]["account_id"] == line["account_id"]
    # Every request has an id of its own.
    assert len({r["request_id"] for r in access}) == len(access)


def test_webhook_outcomes_are_counted(
    tmp_path: Path, start_webhook_server: StartServer, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver({"/hook": {"fail_first": 1}})  # each event: 500, then 200
    server = start_webhook_server(tmp_path / "gateway", FRESH_GAUGES)
    account = server.create_account("hooked", webhook_url=receiver.url("/hook"))
    answer = server.send(account, [sms(), sms(), sms("+380501230001")])
    mids = [m["messageId"] for m in answer["messages"]]
    server.wait_all(account, mids, timeout=15)
    events = 2 * len(mids)  # processing and the final status of each

    def settled() -> bool:
        m = scrape(server.base_url)
        delivered = value(m, "batgate_webhook_deliveries_total", outcome="delivered")
        return delivered == events and value(m, "batgate_webhook_backlog_events") == 0

    eventually(settled, 20, f"{events} webhook events delivered")
    m = scrape(server.base_url)
    assert value(m, "batgate_webhook_deliveries_total", outcome="retrying") == events
    assert value(m, "batgate_webhook_failures_total", reason="http_status") == events
    assert total(m, "batgate_webhook_failures_total") == events
    assert value(m, "batgate_webhook_deliveries_total", outcome="failed") == 0
    assert value(m, "batgate_webhook_oldest_pending_age_seconds") == 0
    assert len({h.webhook_id for h in receiver.hooks("/hook") if h.acked}) == events


# -- /readyz ---------------------------------------------------------------------------


def test_readyz_fails_while_the_sqlite_file_is_away(
    tmp_path: Path, start_webhook_server: StartServer
) -> None:
    database = tmp_path / "data" / "ready.db"
    database.parent.mkdir()
    server = start_webhook_server(
        tmp_path / "gateway", {"BATGATE_DATABASE_URL": f"sqlite:///{database}"}
    )
    response = ready(server.base_url)
    assert (response.status_code, response.json()) == (200, {"status": "ready"})

    away = database.with_name("moved.db")
    database.rename(away)  # the server's open connections still work on the moved file
    try:
        server.assert_error(ready(server.base_url), 503, "NOT_READY")
        assert "Traceback" not in ready(server.base_url).text
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200  # alive, not ready
    finally:
        away.rename(database)
    assert ready(server.base_url).status_code == 200


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of its own (skips without a PostgreSQL server)."""
    if "postgresql" not in os.environ.get("BATGATE_TEST_BACKENDS", "postgresql"):
        pytest.skip("PostgreSQL is not among BATGATE_TEST_BACKENDS")
    name = f"bgobs_{os.getpid()}_{os.urandom(3).hex()}"
    try:
        postgres(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL server at {POSTGRES}: {exc}")
    try:
        yield make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres(*statements: str) -> None:
    async def run() -> None:
        url = make_url(POSTGRES)
        conn = await asyncpg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            database=url.database or "postgres",
            timeout=10,
        )
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def test_readyz_fails_while_postgresql_refuses_connections(
    postgres_database: str, tmp_path: Path, start_webhook_server: StartServer
) -> None:
    name = make_url(postgres_database).database
    server = start_webhook_server(tmp_path / "gateway", {"BATGATE_DATABASE_URL": postgres_database})
    assert ready(server.base_url).status_code == 200
    postgres(
        f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
    )
    try:
        eventually(lambda: ready(server.base_url).status_code == 503, 30, "503 from /readyz")
        server.assert_error(ready(server.base_url), 503, "NOT_READY")
        scraped = scrape(server.base_url)
        assert value(scraped, "batgate_database_up") == 0
        assert ("batgate_queue_messages", ()) not in scraped  # no reading, no value
    finally:
        postgres(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    eventually(lambda: ready(server.base_url).status_code == 200, 30, "200 from /readyz")


# -- `batgate worker --metrics-port` ------------------------------------------------------


def start_worker(server: Server, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(BATGATE), "worker", *args],
            env=server.env,
            cwd=server.workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_a_worker_serves_its_own_metrics(tmp_path: Path, start_webhook_server: StartServer) -> None:
    server = start_webhook_server(tmp_path / "gateway", FRESH_GAUGES)
    account = server.create_account("scaled")
    port = free_port()
    worker_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "worker.log"
    worker = start_worker(server, log, "--metrics-port", str(port))
    try:

        def up() -> bool:
            assert worker.poll() is None, log.read_text()
            try:
                return httpx.get(f"{worker_url}/healthz", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        eventually(up, 30, "the worker's /healthz")
        assert ready(worker_url).json() == {"status": "ready"}

        answer = server.send(account, [sms() for _ in range(40)])
        mids = [m["messageId"] for m in answer["messages"]]
        server.wait_all(account, mids, timeout=20)
        on_server, on_worker = scrape(server.base_url), scrape(worker_url)
        # Each process counts what it sent itself; together, every message once.
        sent = "batgate_channel_sends_total"
        labels = {"channel": "sms", "result": "accepted"}
        assert value(on_server, sent, **labels) + value(on_worker, sent, **labels) == 40
        delivered = "batgate_message_statuses_total"
        both = value(on_server, delivered, status="delivered", channel="sms") + value(
            on_worker, delivered, status="delivered", channel="sms"
        )
        assert both == 40
        # The gauges read the shared database: the same from either process.
        for name in ("batgate_queue_messages", "batgate_webhook_backlog_events"):
            assert value(on_worker, name) == value(on_server, name) == 0
        assert value(on_worker, "batgate_database_up") == 1
        assert total(on_worker, "batgate_build_info") == 1
        # The worker has no HTTP API: no request histogram series of its own.
        assert total(on_worker, "batgate_http_request_duration_seconds_count") == 0
    finally:
        stop(worker)
    records = log_lines(log)
    assert any(r["message"] == f"metrics on {worker_url}/metrics" for r in records)


def test_a_worker_whose_metrics_port_is_taken_says_so(
    tmp_path: Path, start_webhook_server: StartServer
) -> None:
    server = start_webhook_server(tmp_path / "gateway", {})
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(BATGATE), "worker", "--metrics-port", str(port)],
            env=server.env,
            cwd=server.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr


def test_a_stopping_worker_is_not_ready_and_finishes_its_webhooks_first(
    tmp_path: Path,
    start_server: Callable[..., Server],
    databases: Any,
    backend: str,
    make_receiver: Callable[..., Any],
) -> None:
    """SIGTERM with a webhook in flight (the receiver holds it 3 s): /readyz answers 503
    at once, the delivery is answered and recorded, then the worker exits, in time."""
    receiver = make_receiver({"/hook": {"hang": 3, "hang_first": 1}})
    settings = {
        "BATGATE_SANDBOX__DELIVERY_DELAY": "0.3",
        "BATGATE_WEBHOOKS__TIMEOUT": "10",
        "BATGATE_WEBHOOKS__POLL_INTERVAL": "0.05",
        "BATGATE_WEBHOOKS__RETRY_DELAYS": "[0.2]",
        "BATGATE_SHUTDOWN_TIMEOUT": "15",
        **FRESH_GAUGES,
    }
    workdir = tmp_path / "gateway"
    workdir.mkdir()
    server = start_server(workdir, settings, databases.url(backend, workdir), "--no-workers")
    account = server.create_account("stopping", webhook_url=receiver.url())
    port = free_port()
    worker_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "worker.log"
    worker = start_worker(server, log, "--metrics-port", str(port))
    try:

        def up() -> bool:
            assert worker.poll() is None, log.read_text()
            try:
                return ready(worker_url).status_code == 200
            except httpx.TransportError:
                return False

        eventually(up, 30, "the worker ready")
        mid = server.send_one(account, sms())["messageId"]
        eventually(lambda: len(receiver.hooks()) >= 1, 30, "a webhook in flight")
        asked = time.monotonic()
        worker.terminate()
        answer = ready(worker_url)
        assert answer.status_code == 503, answer.text
        assert "shutting down" in answer.json()["error"]["message"]
        assert worker.wait(timeout=20) == 0, log.read_text()
        took = time.monotonic() - asked
    finally:
        stop(worker)
    assert took <= 15, took
    [event] = [
        e
        for e in map(json.loads, server.cli("webhooks", "list", "--json").stdout.splitlines())
        if e["messageId"] == mid and e["deliverystatus"] == "processing"
    ]
    # Answered (200 after the hang) and recorded before the worker left.
    assert (event["state"], event["attempts"], event["lastStatus"]) == ("delivered", 1, 200)
    assert "worker stopping" in log.read_text()
