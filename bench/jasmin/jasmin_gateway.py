"""Jasmin (the open-source Python SMS gateway) run for the benchmark, against our SMSC.

`Jasmin` is a context manager that brings up a fresh Jasmin 0.11.0 deployment on this
machine, configured over jCli to send through `connectors` SMPP client connectors to the
SMSC on `smsc_port`, and takes it all down again on exit. Standard library only (plus
httpx in the caller): the benchmark runs in batgate's virtualenv, Jasmin in its own.

The deployment is Jasmin's recommended one, three Twisted processes:

- ``jasmind``: HTTP API (/send), jCli, router, SMPP client connectors (and their AMQP
  consumers), SMPP server, deliver_sm thrower;
- ``dlrlookupd``: matches the SMSC's receipts to messages (through Redis) and queues DLRs;
- ``dlrd``: the DLR thrower, which makes the HTTP callbacks;

plus RabbitMQ (the queues between all of them) and Redis (the DLR maps), which are
system services this class starts if they are down but never stops. With
``dlr_daemons=False`` jasmind runs the DLR lookup and thrower in-process instead.

DLR callbacks (what a receiver sees, with ``dlr-method=POST`` and ``dlr-level=2``):
    ``POST <dlr-url>``, ``Content-Type: application/x-www-form-urlencoded``,
    ``Connection: close`` (a new connection per DLR), a body such as
    ``id=ff68…e29f2&level=2&message_status=DELIVRD&connector=1000001&id_smsc=1000001&
    sub=001&dlvrd=001&subdate=2612060705&donedate=2612060705&err=000&text=hello``:
    ``id`` is the message id /send returned, ``message_status`` the receipt's stat
    (``DELIVRD``, ``UNDELIV``…; at level 1 the submit_sm_resp status, ``ESME_ROK``),
    ``level`` 1 for the SMSC's acceptance or 2 for the terminal receipt. ``connector``
    should name the connector but, at level 2 in 0.11.0, carries the SMSC's message id.
    dlrd wants a status below 400 and a body that is exactly ``ACK/Jasmin``
    (surrounding whitespace allowed). Anything else counts as a failure: the DLR is
    thrown again after ``retry_delay`` (30 s), up to ``max_retries`` (3) more times,
    except after a 404, which is never retried. One DLR per request; dlrd consumes
    without a prefetch limit, so callbacks overlap.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType

from jasmin_install import WORK, dist_config, install, venv_python
from jcli_client import JCli

__all__ = ["Jasmin", "JasminError", "free_port", "install", "running_daemons"]

HOST = "127.0.0.1"
RABBITMQ_PORT = 5672
REDIS_PORT = 6379
VHOST = "jasmin_bench"  # a RabbitMQ vhost of our own: resetting it touches nothing else
# Jasmin 0.11 ignores its `dbid` setting unless Redis has a password (its connection pool
# is built with dbid None): its DLR maps always land in database 0, flushed at each start.
REDIS_DB = 0
JCLI_USER, JCLI_PASSWORD = "jcliadmin", "jclipwd"  # Jasmin's defaults
LOOKUP_ID = "bench"  # dlrlookupd's id and pid: its queue is DLRLookup-bench
THROWER_QUEUE = "dlr_thrower"
DAEMON_SCRIPTS = ("jasmind.py", "dlrd.py", "dlrlookupd.py", "interceptord.py")
LOCK_FILES = (
    "/tmp/jasmind.lock",
    f"/tmp/dlrlookupd-{LOOKUP_ID}.lock",
    f"/tmp/dlrd-{LOOKUP_ID}.lock",
)
REDIS_START = [
    "redis-server",
    "--daemonize", "yes",
    "--bind", "127.0.0.1 -::1",
    "--port", str(REDIS_PORT),
    "--save", "",
    "--appendonly", "no",
    "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip
STOP_GRACE = 10.0
START_TIMEOUT = 90.0
_SUCCESS = re.compile(r'Success "([^"]+)"')


class JasminError(Exception):
    """Jasmin (or what it needs) did not start or configure; the message says why."""


@dataclass(frozen=True)
class Ports:
    """The TCP ports jasmind listens on, all on 127.0.0.1, picked free at each start."""

    http: int
    jcli: int
    smpp_server: int
    smpp_server_pb: int
    smppcm_pb: int
    router_pb: int

    @classmethod
    def pick(cls) -> Ports:
        return cls(*(free_port() for _ in fields(cls)))


@dataclass
class _Daemon:
    name: str
    proc: subprocess.Popen[bytes]
    out: Path

    def tail(self, lines: int = 25) -> str:
        text = self.out.read_text(errors="replace") if self.out.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Jasmin:
    """A fresh Jasmin deployment for one benchmark run (see the module docstring).

    On enter: RabbitMQ and Redis are up, Jasmin's queues, DLR maps and saved
    configuration are wiped, jasmind/dlrlookupd/dlrd start, and jCli configures a user
    with unlimited quotas, `connectors` started connectors smsc1…smscN (unthrottled) and
    an MT route over them; enter returns once every connector is bound and the DLR
    daemons consume. On exit every process it started is stopped.
    """

    username = "bench"
    password = "benchpw"

    def __init__(
        self,
        smsc_port: int,
        connectors: int = 1,
        work: Path | None = None,
        dlr_daemons: bool = True,
        log: Callable[[str], None] = print,
    ) -> None:
        if connectors < 1:
            raise ValueError("connectors must be at least 1")
        self.smsc_port = smsc_port
        self.connectors = connectors
        self.dlr_daemons = dlr_daemons
        self._log = log
        self.work = work or WORK  # bench/jasmin/.work/ unless told otherwise
        self.run_dir = self.work / "run"  # configs, store and logs of this run
        self.ports = Ports.pick()
        self.jcli_transcript: list[str] = []
        self._daemons: list[_Daemon] = []

    # -- what the benchmark uses -------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.ports.http}"

    @property
    def connector_ids(self) -> list[str]:
        return [f"smsc{i}" for i in range(1, self.connectors + 1)]

    def send_url(self, to: str, content: str, dlr_url: str | None = None) -> str:
        """The GET /send URL for one message; with `dlr_url`, a level-2 DLR by POST."""
        params = {
            "username": self.username,
            "password": self.password,
            "to": to,
            "content": content,
        }
        if dlr_url is not None:
            params |= {"dlr": "yes", "dlr-url": dlr_url, "dlr-level": "2", "dlr-method": "POST"}
        return f"{self.http_url}/send?{urllib.parse.urlencode(params)}"

    @staticmethod
    def message_id(response_text: str) -> str:
        """The id in /send's `Success "<id>"` answer; ValueError for any other answer."""
        match = _SUCCESS.search(response_text)
        if match is None:
            raise ValueError(f"not a Jasmin success answer: {response_text[:200]!r}")
        return match.group(1)

    def pids(self) -> dict[str, list[int]]:
        """Every process this deployment runs on, grouped, for CPU time and RSS sums."""
        groups = {d.name: [d.proc.pid] for d in self._daemons if d.proc.poll() is None}
        beams = [pid for pid in _pids_named("beam.smp") if b"rabbit" in _cmdline(pid)]
        groups["rabbitmq"] = beams + [c for pid in beams for c in _descendants(pid)]
        groups["redis"] = _pids_named("redis-server")
        return groups

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Jasmin:
        started = time.monotonic()
        install(self._log, self.work)
        try:
            self._start()
        except BaseException:
            self._stop_daemons()
            raise
        self._log(f"Jasmin up in {time.monotonic() - started:.1f} s: {self.describe()}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stops the daemons, then drops their queues and DLR maps (RabbitMQ and Redis
        themselves keep running)."""
        self._stop_daemons()
        _rabbitmqctl("delete_vhost", VHOST, check=False)
        with contextlib.suppress(OSError, JasminError):
            _flush_redis_db(REDIS_DB)

    def describe(self) -> str:
        daemons = ", ".join(f"{d.name} {d.proc.pid}" for d in self._daemons)
        return f"{self.connectors} connector(s) to :{self.smsc_port}, {daemons}, {self.http_url}"

    def _start(self) -> None:
        ensure_services(self._log)
        reset_state(self.run_dir)
        write_configs(self.work, self.run_dir, self.ports)
        for name, argv in self._argvs():
            self._daemons.append(_spawn(name, argv, self.run_dir))
        self._configure()
        self._wait_bound()
        self._wait_dlr_consumers()

    def _argvs(self) -> list[tuple[str, list[str]]]:
        python = str(venv_python(self.work))
        bin_dir = venv_python(self.work).parent
        jasmind = [python, str(bin_dir / "jasmind.py"), "--config", "jasmin.cfg"]
        jasmind += ["--username", JCLI_USER, "--password", JCLI_PASSWORD]
        if not self.dlr_daemons:
            return [("jasmind", [*jasmind, "--enable-dlr-lookup", "--enable-dlr-thrower"])]
        lookup = [python, str(bin_dir / "dlrlookupd.py"), "-c", "dlrlookupd.cfg", "-i", LOOKUP_ID]
        thrower = [python, str(bin_dir / "dlrd.py"), "-c", "dlr.cfg", "-i", LOOKUP_ID]
        return [("dlrlookupd", lookup), ("dlrd", thrower), ("jasmind", jasmind)]

    def _configure(self) -> None:
        """Logs into jCli as soon as it answers and types the configuration script."""
        script = jcli_script(self.connector_ids, HOST, self.smsc_port, self.username, self.password)
        with self._jcli_session(START_TIMEOUT) as jcli:
            try:
                jcli.run_all(script)
            finally:
                self.jcli_transcript = jcli.transcript

    def _jcli_session(self, timeout: float) -> JCli:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                jcli = JCli(HOST, self.ports.jcli)
            except OSError:
                if time.monotonic() > deadline:
                    raise JasminError(f"jCli not listening after {timeout:.0f} s") from None
                time.sleep(0.2)
                continue
            try:
                jcli.login(JCLI_USER, JCLI_PASSWORD)
            except BaseException:
                jcli.close()
                raise
            return jcli

    def _wait_bound(self, timeout: float = 60.0) -> None:
        """Polls jCli's connector list until every connector's session is BOUND_TRX."""
        deadline = time.monotonic() + timeout
        with self._jcli_session(timeout) as jcli:
            while True:
                states = connector_states(jcli.run("smppccm -l"))
                if all(states.get(cid) == "BOUND_TRX" for cid in self.connector_ids):
                    return
                self._check_alive()
                if time.monotonic() > deadline:
                    raise JasminError(f"connectors not bound after {timeout:.0f} s: {states}")
                time.sleep(0.2)

    def _wait_dlr_consumers(self, timeout: float = 60.0) -> None:
        """Waits until the DLR lookup and thrower queues have a consumer.

        Why: jasmind publishes receipts to a topic exchange; until dlrlookupd has
        declared and bound its queue, a receipt would be routed nowhere and lost.
        """
        deadline = time.monotonic() + timeout
        while True:
            consumers = _queue_consumers()
            if all(consumers.get(q, 0) > 0 for q in (f"DLRLookup-{LOOKUP_ID}", THROWER_QUEUE)):
                return
            self._check_alive()
            if time.monotonic() > deadline:
                raise JasminError(f"DLR queues without consumers after {timeout:.0f} s")
            time.sleep(0.5)

    def _check_alive(self) -> None:
        for daemon in self._daemons:
            if daemon.proc.poll() is not None:
                raise JasminError(
                    f"{daemon.name} exited ({daemon.proc.returncode}):\n{daemon.tail()}"
                )

    def _stop_daemons(self) -> None:
        """SIGTERM (jasmind first, so nothing publishes to stopped consumers), then KILL."""
        for daemon in sorted(self._daemons, key=lambda d: d.name != "jasmind"):
            _stop(daemon)
        self._daemons.clear()


# -- jCli ------------------------------------------------------------------------------


def jcli_script(
    connector_ids: list[str], smsc_host: str, smsc_port: int, username: str, password: str
) -> list[str]:
    """The whole jCli configuration: connectors, group, user, MT route, then start.

    `submit_throughput 0` lifts the connector's default cap of 1 submit_sm per second;
    every user quota set to none is unlimited. One connector gets a DefaultRoute; several
    get a RandomRoundrobinMTRoute (a random pick per message) behind a filter matching all.
    """
    lines: list[str] = []
    for cid in connector_ids:
        lines += ["smppccm -a", f"cid {cid}", f"host {smsc_host}", f"port {smsc_port}"]
        lines += [f"username {cid}", "password pwd", "submit_throughput 0", "ok"]
    lines += ["group -a", "gid bench", "ok"]
    lines += ["user -a", f"uid {username}", f"username {username}", f"password {password}"]
    lines += ["gid bench"]
    for quota in ("balance", "sms_count", "early_percent", "http_throughput", "smpps_throughput"):
        lines.append(f"mt_messaging_cred quota {quota} none")
    lines.append("ok")
    lines += _route_lines(connector_ids)
    lines += [f"smppccm -1 {cid}" for cid in connector_ids]
    return lines


def _route_lines(connector_ids: list[str]) -> list[str]:
    if len(connector_ids) == 1:
        return ["mtrouter -a", "type DefaultRoute", f"connector smppc({connector_ids[0]})",
                "rate 0.00", "ok"]  # fmt: skip
    pool = ";".join(f"smppc({cid})" for cid in connector_ids)
    return [
        "filter -a", "fid any", "type TransparentFilter", "ok",
        "mtrouter -a", "type RandomRoundrobinMTRoute", "order 10", "filters any",
        f"connectors {pool}", "rate 0.00", "ok",
    ]  # fmt: skip


def connector_states(listing: str) -> dict[str, str]:
    """{connector id: session state} from `smppccm -l`'s table."""
    states = {}
    for line in listing.splitlines():
        cells = line.lstrip("#").split()
        if line.startswith("#") and len(cells) >= 3 and cells[0] != "Connector":
            states[cells[0]] = cells[2]
    return states


# -- configuration files ---------------------------------------------------------------


def write_configs(work: Path, run_dir: Path, ports: Ports) -> None:
    """jasmin.cfg, dlrlookupd.cfg and dlr.cfg in `run_dir`, from the sdist's files.

    Every path is relative to `run_dir`, which is the daemons' working directory: the
    saved configuration store, the AMQP spec copy and all logs stay in the work folder.
    Every listener binds 127.0.0.1.
    """
    shutil.copy(dist_config(work, "resource/amqp0-9-1.xml"), run_dir / "amqp0-9-1.xml")
    amqp = {"host": HOST, "port": str(RABBITMQ_PORT), "vhost": VHOST, "spec": "amqp0-9-1.xml"}
    redis = {"host": HOST, "port": str(REDIS_PORT), "dbid": str(REDIS_DB)}
    smpps_pb_client = {"host": HOST, "port": str(ports.smpp_server_pb)}
    _write_config(work, run_dir, "jasmin.cfg", {
        "smpp-server": {"bind": HOST, "port": str(ports.smpp_server)},
        "smpp-server-pb": {"bind": HOST, "port": str(ports.smpp_server_pb)},
        "client-management": {"bind": HOST, "port": str(ports.smppcm_pb), "store_path": "store"},
        "router": {"bind": HOST, "port": str(ports.router_pb), "store_path": "store"},
        "http-api": {"bind": HOST, "port": str(ports.http)},
        "jcli": {"bind": HOST, "port": str(ports.jcli)},
        "amqp-broker": amqp,
        "redis-client": redis,
        "dlr": {"pid": LOOKUP_ID},
    })  # fmt: skip
    _write_config(work, run_dir, "dlrlookupd.cfg", {
        "amqp-broker": amqp,
        "redis-client": redis,
        "dlr": {"pid": LOOKUP_ID, "log_file": "logs/dlrlookupd-messages.log"},
    })  # fmt: skip
    _write_config(work, run_dir, "dlr.cfg", {
        "amqp-broker": amqp,
        "smpp-server-pb-client": smpps_pb_client,
        "dlr-thrower": {"log_file": "logs/dlrd-dlr-thrower.log"},
    })  # fmt: skip


def _write_config(
    work: Path, run_dir: Path, name: str, settings: dict[str, dict[str, str]]
) -> None:
    parser = configparser.RawConfigParser()
    parser.read(dist_config(work, name))
    for section, options in settings.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in options.items():
            parser.set(section, key, value)
    with (run_dir / name).open("w") as handle:
        parser.write(handle)


# -- RabbitMQ, Redis and Jasmin's leftovers ----------------------------------------------


def ensure_services(log: Callable[[str], None] = print) -> None:
    """Starts RabbitMQ and Redis if they are not listening (they are left running)."""
    if not _listening(REDIS_PORT):
        log("starting redis-server")
        Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
        Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
        subprocess.run(REDIS_START, check=True, capture_output=True)
        _wait_listening(REDIS_PORT, 30.0, "redis-server")
    if not _listening(RABBITMQ_PORT):
        log("starting rabbitmq-server (this takes a few seconds)")
        subprocess.run(["rabbitmq-server", "-detached"], check=True, capture_output=True)
        _wait_listening(RABBITMQ_PORT, 120.0, "rabbitmq-server")
        _rabbitmqctl("await_startup")


def reset_state(run_dir: Path) -> None:
    """Wipes what a previous run left: our vhost, our Redis db, the store, the logs.

    jasmind reloads its saved configuration (connectors, users, routes) from the store
    at start, so an old store would add a second set of everything.
    """
    _rabbitmqctl("delete_vhost", VHOST, check=False)
    _rabbitmqctl("add_vhost", VHOST)
    _rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    _flush_redis_db(REDIS_DB)
    _clear_stale_locks()
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "store").mkdir(parents=True)
    (run_dir / "logs").mkdir()


def _clear_stale_locks() -> None:
    """Removes Jasmin's /tmp lock files when no Jasmin daemon runs.

    Why: each daemon takes a fixed lock under /tmp and, if a previous one was killed
    without releasing it, the next one prints "Lock not acquired" and exits 0.
    """
    running = running_daemons()
    if running:
        raise JasminError(f"Jasmin daemons already running (pids {running}): stop them first")
    for lock in map(Path, LOCK_FILES):
        if lock.exists():
            inode = lock.stat().st_ino
            for peer in Path("/tmp").iterdir():
                if peer != lock and _inode(peer) == inode:
                    peer.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)


def running_daemons() -> list[int]:
    """The pids of every Jasmin daemon on this machine, ours or not."""
    return [pid for pid in _all_pids() if _is_jasmin_daemon(pid)]


def _is_jasmin_daemon(pid: int) -> bool:
    """Whether the process runs jasmind.py, dlrd.py or dlrlookupd.py (as script or argv[1])."""
    argv = _cmdline(pid).split(b"\0")[:2]
    return any(Path(arg.decode(errors="replace")).name in DAEMON_SCRIPTS for arg in argv)


def _queue_consumers() -> dict[str, int]:
    out = _rabbitmqctl("-q", "list_queues", "-p", VHOST, "name", "consumers", "--no-table-headers")
    consumers = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) == 2 and cells[1].isdigit():
            consumers[cells[0]] = int(cells[1])
    return consumers


def _rabbitmqctl(*args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise JasminError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _flush_redis_db(db: int) -> None:
    """SELECT our database and FLUSHDB it, in RESP over a plain socket."""
    request = b""
    for command in (("SELECT", str(db)), ("FLUSHDB",)):
        request += f"*{len(command)}\r\n".encode()
        for arg in command:
            request += f"${len(arg.encode())}\r\n{arg}\r\n".encode()
    with socket.create_connection((HOST, REDIS_PORT), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while answer.count(b"\r\n") < 2:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    if answer != b"+OK\r\n+OK\r\n":
        raise JasminError(f"Redis refused SELECT/FLUSHDB: {answer!r}")


# -- processes ---------------------------------------------------------------------------


def _jasmin_env() -> dict[str, str]:
    """Our environment for the daemons, less anything Jasmin would read as a setting.

    Jasmin lets an environment variable SECTION_OPTION (e.g. HTTP_API_PORT) override
    its config files; LOG_PATH (relative: the run folder's logs/) catches the log files
    no config file names, such as each connector's default-smscN.log.
    """
    sections = ("SMPP_", "CLIENT_MANAGEMENT_", "SERVICE_SMPPCLIENT_", "SM_LISTENER_", "DLR_",
                "AMQP_BROKER_", "HTTP_API_", "ROUTER_", "DELIVERSM_THROWER_", "REDIS_CLIENT_",
                "JCLI_", "INTERCEPTOR_", "ROOT_PATH", "CONFIG_PATH", "STORE_PATH")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(sections)}
    env |= {"LOG_PATH": "logs", "CONFIG_PATH": ".", "PYTHONUNBUFFERED": "1"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return env


def _spawn(name: str, argv: list[str], run_dir: Path) -> _Daemon:
    out = run_dir / "logs" / f"{name}.out"
    with out.open("wb") as handle:
        proc = subprocess.Popen(
            argv,
            cwd=run_dir,
            env=_jasmin_env(),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return _Daemon(name, proc, out)


def _stop(daemon: _Daemon) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if daemon.proc.poll() is not None:
            return
        try:
            os.killpg(daemon.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            daemon.proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            continue


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def _wait_listening(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not _listening(port):
        if time.monotonic() > deadline:
            raise JasminError(f"{what} not listening on {port} after {timeout:.0f} s")
        time.sleep(0.5)


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _pids_named(comm: str) -> list[int]:
    pids = []
    for pid in _all_pids():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                pids.append(pid)
        except OSError:
            continue
    return pids


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _inode(path: Path) -> int | None:
    try:
        return path.lstat().st_ino
    except OSError:
        return None
