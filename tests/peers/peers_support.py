"""What the peer self-tests import by name: running a peer script as a subprocess, its
control API, and a raw-socket ESME for what smpp34's client cannot show (the order in
which PDUs arrive, a late deliver_sm_resp, the status of a refused bind, a data_sm).

The peers are plain scripts, started the way the connector's tests and benchmarks start
them, so these helpers only know their command lines, their ``ready`` line and their
JSON control API.
"""

from __future__ import annotations

import asyncio
import json
import selectors
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PEERS = Path(__file__).resolve().parent
HOST = "127.0.0.1"
READY_TIMEOUT = 20.0

# SMPP command ids and statuses the tests look at.
BIND_TRANSCEIVER = 0x00000009
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
DATA_SM = 0x00000103
RESP = 0x80000000
ESME_RINVPASWD = 0x0000000E
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Peer:
    """A running peer script: its SMPP port, control port and process."""

    process: subprocess.Popen[str]
    port: int
    control_port: int
    stderr: IO[str]
    stderr_path: Path

    def log(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_text(errors="replace")


def start_peer(
    script: str, args: list[str], log_dir: Path, attempts: int = 3, port: int | None = None
) -> Peer:
    """Start ``tests/peers/<script>`` on free ports (or its SMPP port on `port`: a peer
    coming back where it was) and wait for its ``ready`` line.

    Tried again on other ports when it does not come up: a port found free can be
    taken by another process (another test run) before the peer binds it.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _start_peer(script, args, log_dir, port)
        except RuntimeError:
            if attempt == attempts or port is not None:
                raise
    raise AssertionError("unreachable")


def _start_peer(script: str, args: list[str], log_dir: Path, port: int | None = None) -> Peer:
    port, control_port = port or free_port(), free_port()
    stderr_path = log_dir / f"{Path(script).stem}-{port}-{control_port}.log"
    stderr = stderr_path.open("w")
    command = [sys.executable, str(PEERS / script), "--port", str(port)]
    command += ["--control-port", str(control_port), *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    peer = Peer(process, port, control_port, stderr, stderr_path)
    try:
        wait_ready(peer)
    except BaseException:
        stop_peer(peer)
        raise
    return peer


def wait_ready(peer: Peer) -> None:
    stdout = peer.process.stdout
    if stdout is None:
        raise RuntimeError("the peer's stdout is not a pipe")
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        if not selector.select(READY_TIMEOUT):
            raise RuntimeError(f"no 'ready' in {READY_TIMEOUT}s:\n{peer.log()}")
    line = stdout.readline().strip()
    if line != "ready":
        peer.process.wait(5)
        raise RuntimeError(f"peer said {line!r}, exit {peer.process.returncode}:\n{peer.log()}")


def stop_peer(peer: Peer) -> int:
    """SIGTERM, then SIGKILL if it lingers; the exit code (0 when it stopped cleanly)."""
    process = peer.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
    peer.stderr.close()
    return process.returncode


def _http(method: str, url: str) -> Any:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


async def control(peer: Peer, method: str, path: str) -> Any:
    """Call the peer's control API (in a thread: the event loop keeps serving SMPP)."""
    url = f"http://{HOST}:{peer.control_port}{path}"
    return await asyncio.to_thread(_http, method, url)


async def wait_stats(peer: Peer, key: str, value: int, timeout: float = 3.0) -> dict[str, Any]:
    """Poll ``GET /stats`` until ``stats[key] == value``; the last stats either way."""
    deadline = time.monotonic() + timeout
    while True:
        stats: dict[str, Any] = await control(peer, "GET", "/stats")
        if stats[key] == value or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.05)


# ── A raw-socket ESME ───────────────────────────────────────────────────────


def cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def parse_tlvs(data: bytes) -> dict[int, bytes]:
    tlvs: dict[int, bytes] = {}
    while len(data) >= 4:
        tag, length = struct.unpack(">HH", data[:4])
        tlvs[tag] = data[4 : 4 + length]
        data = data[4 + length :]
    return tlvs


def skip_fields(data: bytes, layout: str) -> bytes:
    """Skip the fixed fields of a PDU body: ``c`` a C-string, ``b`` one byte."""
    for kind in layout:
        data = data[data.index(b"\x00") + 1 :] if kind == "c" else data[1:]
    return data


@dataclass
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes

    def message_id(self) -> str:
        return self.body.split(b"\x00", 1)[0].decode()

    def wire(self) -> bytes:
        """The whole PDU again, e.g. for ``smpp34.decode``."""
        header = struct.pack(
            ">IIII", 16 + len(self.body), self.command_id, self.status, self.sequence
        )
        return header + self.body

    def data_sm_tlvs(self) -> dict[int, bytes]:
        # service_type, src ton/npi/addr, dst ton/npi/addr, esm_class, registered, coding
        return parse_tlvs(skip_fields(self.body, "cbbcbbcbbb"))


class RawEsme:
    """Just enough of an ESME to see PDUs in the order they arrive and answer them late."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sequence = 0

    @classmethod
    async def connect(cls, port: int) -> RawEsme:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    def send(self, command_id: int, body: bytes = b"", sequence: int | None = None) -> int:
        if sequence is None:
            self.sequence += 1
            sequence = self.sequence
        header = struct.pack(">IIII", 16 + len(body), command_id, 0, sequence)
        self.writer.write(header + body)
        return sequence

    async def read(self, timeout: float = 5.0) -> Pdu:
        header = await asyncio.wait_for(self.reader.readexactly(16), timeout)
        length, command_id, status, sequence = struct.unpack(">IIII", header)
        body = await asyncio.wait_for(self.reader.readexactly(length - 16), timeout)
        return Pdu(command_id, status, sequence, body)

    async def bind(self, system_id: str, password: str) -> Pdu:
        body = cstr(system_id) + cstr(password) + cstr("") + bytes([0x34, 0, 0]) + cstr("")
        self.send(BIND_TRANSCEIVER, body)
        return await self.read()

    def submit(self, destination: str, text: bytes, source: str = "BAT") -> int:
        body = cstr("") + bytes([1, 1]) + cstr(source) + bytes([1, 1]) + cstr(destination)
        body += bytes([0, 0, 0]) + cstr("") + cstr("")  # esm, pid, priority, schedule, validity
        body += bytes([1, 0, 0, 0, len(text)]) + text  # registered_delivery, ..., sm_length
        return self.send(SUBMIT_SM, body)

    def answer(self, request: Pdu) -> None:
        """The resp of a deliver_sm or data_sm: status OK, an empty message_id."""
        self.send(request.command_id | RESP, b"\x00", sequence=request.sequence)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:  # the peer dropped it first
            pass
