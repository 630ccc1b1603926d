"""A minimal jCli client: Jasmin's configuration console is a telnet server, not an API.

Why hand-written: telnetlib is deprecated in Python 3.11 (and gone in 3.13), and jCli
only draws a prompt once the client has answered the telnet NAWS (window size) option;
a plain socket that never negotiates waits forever. This client answers the few options
Twisted's telnet server asks about, types one line at a time, and reads up to the next
prompt. Standard library only.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterable

# Telnet protocol bytes (RFC 854/855) and the options Twisted's server negotiates.
IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
OPT_ECHO, OPT_SGA, OPT_NAWS = 1, 3, 31
# A wide window, so that jCli never wraps the lines of a listing.
WINDOW = (250, 60)

PROMPTS = ("jcli : ", "> ", "Username: ", "Password: ")
# jCli draws through a terminal emulator: cursor moves, insert mode, colours.
_ANSI = re.compile(rb"\x1b(\[[0-9;?]*[A-Za-z@]|[()][0-9A-Za-z]|[78=>c])")
# Words that jCli prints when a line was refused; none of them appears in a success.
_FAILURES = re.compile(
    r"(Unknown|Error|error|Invalid|invalid|Incorrect|Cannot|cannot|Failed|failed|"
    r"not found|Missing|missing|mandatory|Exit session before)"
)


class JCliError(Exception):
    """jCli refused a line, closed the connection, or did not answer in time."""


class TelnetFilter:
    """Separates the data bytes of a telnet stream from its option negotiation.

    `feed` returns the data and queues the replies in `replies`: we agree to the server
    echoing and to suppressing go-ahead both ways, report our window size when asked
    (NAWS, which is what makes jCli draw its prompt), and refuse everything else (the
    server then logs a harmless OptionRefused for LINEMODE).
    """

    def __init__(self) -> None:
        self._pending = b""
        self.replies = bytearray()

    def feed(self, chunk: bytes) -> bytes:
        buf = self._pending + chunk
        data = bytearray()
        i = 0
        while i < len(buf):
            if buf[i] != IAC:
                data.append(buf[i])
                i += 1
                continue
            consumed = self._command(buf, i, data)
            if consumed == 0:  # an incomplete sequence: wait for the next chunk
                break
            i += consumed
        self._pending = buf[i:]
        return bytes(data)

    def _command(self, buf: bytes, i: int, data: bytearray) -> int:
        """Handles the IAC sequence at `buf[i]`; returns its length, 0 if incomplete."""
        if i + 1 >= len(buf):
            return 0
        verb = buf[i + 1]
        if verb == IAC:  # an escaped 0xff data byte
            data.append(IAC)
            return 2
        if verb == SB:
            end = buf.find(bytes((IAC, SE)), i + 2)
            return 0 if end < 0 else end + 2 - i
        if verb in (DO, DONT, WILL, WONT):
            if i + 2 >= len(buf):
                return 0
            self._negotiate(verb, buf[i + 2])
            return 3
        return 2  # NOP, GA and friends: nothing to do

    def _negotiate(self, verb: int, option: int) -> None:
        if verb == DO and option == OPT_NAWS:
            width, height = WINDOW
            size = bytes((width >> 8, width & 0xFF, height >> 8, height & 0xFF))
            self.replies += bytes((IAC, WILL, OPT_NAWS, IAC, SB, OPT_NAWS)) + size
            self.replies += bytes((IAC, SE))
        elif verb == DO:
            answer = WILL if option == OPT_SGA else WONT
            self.replies += bytes((IAC, answer, option))
        elif verb == WILL:
            answer = DO if option in (OPT_ECHO, OPT_SGA) else DONT
            self.replies += bytes((IAC, answer, option))


class JCli:
    """One logged-in jCli session; use as a context manager (it says `quit` on exit)."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self._timeout = timeout
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._telnet = TelnetFilter()
        self.transcript: list[str] = []

    def __enter__(self) -> JCli:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Says `quit` (so jCli logs a clean end of session) and closes the socket."""
        try:
            self._sock.sendall(b"quit\r\n")
        except OSError:
            pass
        self._sock.close()

    def login(self, username: str, password: str) -> None:
        """Answers the Username/Password prompts; fails unless jCli's prompt follows."""
        self._expect("Username: ")
        self._type(username)
        self._expect("Password: ")
        self._type(password)
        text = self._read_to_prompt()
        if not text.endswith("jcli : "):
            raise JCliError(f"jCli login refused: {text!r}")

    def run(self, line: str, expect: str | None = None) -> str:
        """Types one line and returns what jCli printed before the next prompt.

        Raises JCliError when the answer looks like a refusal, or lacks `expect`.
        """
        self._type(line)
        text = self._read_to_prompt()
        answer = _strip_echo(text, line)
        self.transcript.append(f"{line}\n{answer}".rstrip())
        if _FAILURES.search(answer) or (expect is not None and expect not in answer):
            raise JCliError(f"jCli refused {line!r}: {answer!r}")
        return answer

    def run_all(self, lines: Iterable[str]) -> None:
        """Types a script; an `ok` line (the end of an add/update session) must succeed."""
        for line in lines:
            self.run(line, expect="Successfully" if line == "ok" else None)

    def _type(self, line: str) -> None:
        self._sock.sendall(line.encode() + b"\r\n")

    def _expect(self, prompt: str) -> None:
        text = self._read_to_prompt()
        if not text.endswith(prompt):
            raise JCliError(f"expected jCli prompt {prompt!r}, got {text!r}")

    def _read_to_prompt(self) -> str:
        """Reads until the screen ends with a prompt (jCli sends nothing after one)."""
        deadline = time.monotonic() + self._timeout
        raw = b""
        while time.monotonic() < deadline:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError as exc:
                raise JCliError(f"jCli said nothing for {self._timeout} s: {raw!r}") from exc
            if not chunk:
                raise JCliError(f"jCli closed the connection: {raw!r}")
            raw += self._telnet.feed(chunk)
            self._flush_replies()
            text = _ANSI.sub(b"", raw).decode(errors="replace").replace("\r", "")
            if text.endswith(PROMPTS):
                return text
        raise JCliError(f"no jCli prompt within {self._timeout} s: {raw!r}")

    def _flush_replies(self) -> None:
        if self._telnet.replies:
            self._sock.sendall(bytes(self._telnet.replies))
            self._telnet.replies.clear()


def _strip_echo(text: str, line: str) -> str:
    """jCli's answer without the echo of the typed line and without the final prompt."""
    for prompt in PROMPTS:
        if text.endswith(prompt):
            text = text[: -len(prompt)]
            break
    if text.startswith(line):
        text = text[len(line) :]
    return text.strip("\n ")
