"""A webhook receiver for the end-to-end tests, run as its own process.

    python receiver.py --port PORT --log FILE [--rules JSON]

It answers every POST by the rule for the request's path and appends one JSON line
per request to FILE — its time, path, headers, body and the answer — *before*
answering, so the file's order is the order in which requests arrived and a request
seen in it was answered after everything above it.

Rules (a JSON object: path prefix → rule; the longest matching prefix wins, and
with none the answer is 200). A rule's keys, all optional:

- ``fail_first``: answer the first N attempts of each ``webhook-id`` with
  ``fail_status`` (default 500) and the ``fail_headers``; later ones with 200.
- ``retry_after_date``: with failing answers, also ``Retry-After`` as an HTTP date
  this many seconds from now.
- ``always``: answer every request with this status (e.g. 410, 500).
- ``hang``: wait this many seconds before answering (the request stays in flight);
  with ``hang_first``, only for the first N attempts of each ``webhook-id``.

``POST /_rules`` with a JSON object replaces the rules; ``GET /_ping`` answers 200.
Attempt counts per ``webhook-id`` live in memory: a restart starts them over.
"""

from __future__ import annotations

import argparse
import base64
import email.utils
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class State:
    def __init__(self, log_path: str, rules: dict[str, dict[str, Any]]) -> None:
        self.lock = threading.Lock()
        self.log = open(log_path, "a", encoding="utf-8")
        self.rules = rules
        self.attempts: Counter[str] = Counter()

    def rule_for(self, path: str) -> dict[str, Any]:
        matches = [prefix for prefix in self.rules if path.startswith(prefix)]
        return self.rules[max(matches, key=len)] if matches else {}


def _answer(rule: dict[str, Any], attempt: int) -> tuple[int, dict[str, str]]:
    if rule.get("always") is not None:
        return int(rule["always"]), {}
    if attempt <= int(rule.get("fail_first", 0)):
        headers = dict(rule.get("fail_headers", {}))
        if rule.get("retry_after_date") is not None:
            at = time.time() + float(rule["retry_after_date"])
            headers["Retry-After"] = email.utils.formatdate(at, usegmt=True)
        return int(rule.get("fail_status", 500)), headers
    return 200, {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(200 if self.path == "/_ping" else 404)

    def do_POST(self) -> None:
        state = self.server.state
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/_rules":
            with state.lock:
                state.rules = json.loads(body)
            self._reply(200)
            return
        webhook_id = self.headers.get("webhook-id") or ""
        with state.lock:
            state.attempts[webhook_id] += 1
            attempt = state.attempts[webhook_id]
            rule = state.rule_for(self.path)
            status, headers = _answer(rule, attempt)
            hang = rule.get("hang")
            if hang and attempt > int(rule.get("hang_first", attempt)):
                hang = None
            record = {
                "t": time.time(),
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": base64.b64encode(body).decode(),
                "attempt": attempt,
                "answer": "hang" if hang else status,
            }
            state.log.write(json.dumps(record) + "\n")
            state.log.flush()
        if hang:
            time.sleep(float(hang))
        self._reply(status, headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: State


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--rules", default="{}")
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    server.state = State(args.log, json.loads(args.rules))
    server.serve_forever()


if __name__ == "__main__":
    main()
