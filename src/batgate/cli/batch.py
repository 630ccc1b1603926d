"""`batgate send --csv`: a CSV file sent in chunks, resumable without sending anything twice.

Two things make a resumed send safe:

- Every chunk goes out with an `Idempotency-Key` derived from the file's bytes,
  the options that shape the messages, the chunk size, the optional batch id and
  the chunk's index. Sending the same chunk again — because the answer was lost
  when the run was interrupted — gets the first answer back from the gateway
  instead of storing the messages again.
- A state file next to the CSV (`FILE.batgate-state.jsonl`, JSON Lines, appended
  and fsynced) records each chunk's key before it is sent and its answer once it
  is back, so a resumed run skips the chunks that are done and reports all rows.

A state file of an unfinished send that no longer matches (the file or the
options changed) stops the run: resuming it with other messages could send some
rows twice. A finished send of the same file (same bytes, same `--batch-id`) is
never sent again, whatever the options; a changed file, or a new `--batch-id`,
starts a new send and a new state file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batgate.client import Client, SendResult

COLUMNS = ("to", "text", "type", "from", "customerMessageId")
REQUIRED = ("to", "text")
STATE_SUFFIX = ".batgate-state.jsonl"
_VERSION = 1


class BatchError(Exception):
    """The CSV or the state file cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Batch:
    """The messages of a CSV file, cut into chunks, with their idempotency keys."""

    path: Path
    messages: list[dict[str, Any]]
    chunk_size: int
    identity: str  # the file's bytes and the batch id: "the same send"
    fingerprint: str  # identity plus the options: the same chunks and keys

    @property
    def chunks(self) -> int:
        return -(-len(self.messages) // self.chunk_size)

    def chunk(self, index: int) -> list[dict[str, Any]]:
        return self.messages[index * self.chunk_size : (index + 1) * self.chunk_size]

    def key(self, index: int) -> str:
        return f"batgate-csv-{self.fingerprint[:40]}-{index}"

    @property
    def state_path(self) -> Path:
        return self.path.with_name(self.path.name + STATE_SUFFIX)


def load_batch(
    path: Path,
    *,
    chunk_size: int,
    default_type: str = "sms",
    default_sender: str | None = None,
    batch_id: str = "",
) -> Batch:
    """Read and check the CSV; BatchError names the first problem (with its line)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchError(f"{path.name} is not UTF-8: {exc}") from None
    messages = list(_rows(text, path.name, default_type, default_sender))
    if not messages:
        raise BatchError(f"{path.name} has no messages")
    identity = _sha256(hashlib.sha256(raw).hexdigest(), batch_id)
    fingerprint = _sha256(identity, str(chunk_size), default_type, default_sender or "")
    return Batch(path, messages, chunk_size, identity, fingerprint)


def _sha256(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _rows(
    text: str, name: str, default_type: str, default_sender: str | None
) -> Iterator[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [c.strip() for c in reader.fieldnames or []]
    unknown = [c for c in header if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing:
        problem = f"unknown columns {unknown}" if unknown else f"missing columns {missing}"
        raise BatchError(f"{name}: {problem}; the columns are {', '.join(COLUMNS)}")
    reader.fieldnames = header
    for row in reader:
        line = reader.line_num
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            raise BatchError(f"{name}, line {line}: more cells than columns")
        message: dict[str, Any] = {
            "type": cells.get("type") or default_type,
            "to": cells["to"],
            "from": cells.get("from") or default_sender,
            "text": row.get("text") or "",
        }
        if not message["from"]:
            raise BatchError(f"{name}, line {line}: no sender (a 'from' column or --from)")
        if cells.get("customerMessageId"):
            message["customerMessageId"] = cells["customerMessageId"]
        yield message


# -- the state file ------------------------------------------------------------------------


@dataclass
class State:
    """What the state file says: answers of the chunks that are done."""

    path: Path
    identity: str | None = None
    fingerprint: str | None = None
    done: dict[int, dict[str, Any]] = field(default_factory=dict)
    chunks: int = 0

    @property
    def finished(self) -> bool:
        return self.chunks > 0 and len(self.done) >= self.chunks

    @classmethod
    def read(cls, path: Path) -> State:
        state = cls(path)
        if not path.exists():
            return state
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short when the run was killed
            if record.get("kind") == "batch":
                if record.get("version") != _VERSION or "identity" not in record:
                    raise BatchError(
                        f"{path.name} is not a state file this batgate can read; delete it"
                    )
                state.identity, state.chunks = record["identity"], record["chunks"]
                state.fingerprint = record["fingerprint"]
            elif record.get("kind") == "done":
                state.done[int(record["chunk"])] = record
        return state

    def start(self, batch: Batch) -> None:
        """A new send: the file begins again with the batch's header."""
        self.identity, self.fingerprint = batch.identity, batch.fingerprint
        self.chunks, self.done = batch.chunks, {}
        header = {
            "kind": "batch",
            "version": _VERSION,
            "file": batch.path.name,
            "identity": batch.identity,
            "fingerprint": batch.fingerprint,
            "rows": len(batch.messages),
            "chunkSize": batch.chunk_size,
            "chunks": batch.chunks,
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(header) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        if record["kind"] == "done":
            self.done[int(record["chunk"])] = record


def open_state(batch: Batch) -> State:
    """The state to continue from: the batch's own, or a fresh one; BatchError on a mismatch."""
    state = State.read(batch.state_path)
    if state.fingerprint == batch.fingerprint:
        return state
    options = "--from/--type/--chunk-size"
    if state.identity == batch.identity and state.finished:
        raise BatchError(
            f"{batch.path.name} was sent already (with other {options}); nothing sent. "
            "Pass --batch-id NAME to send it again."
        )
    if state.fingerprint is not None and not state.finished:
        raise BatchError(
            f"{state.path.name} records an unfinished send of {batch.path.name} with other "
            f"content or {options}/--batch-id: run it again exactly as before to resume, or "
            "delete the state file to start over (rows already sent would be sent again)"
        )
    state.start(batch)
    return state


# -- sending ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowResult:
    row: int  # 1-based, as a spreadsheet shows data rows
    to: str
    message_id: str | None
    error_code: str | None = None
    error_message: str | None = None


def send_batch(
    client: Client, batch: Batch, state: State, on_chunk: Callable[[int], None]
) -> list[RowResult]:
    """Send every chunk not done yet, in order; `on_chunk(n_messages)` after each one."""
    for index in range(batch.chunks):
        if index in state.done:
            continue
        key = batch.key(index)
        state.append({"kind": "sending", "chunk": index, "idempotencyKey": key})
        result = client.send(batch.chunk(index), idempotency_key=key)
        state.append(_done_record(index, key, result))
        on_chunk(len(batch.chunk(index)))
    return results_of(batch, state)


def _done_record(index: int, key: str, result: SendResult) -> dict[str, Any]:
    return {
        "kind": "done",
        "chunk": index,
        "idempotencyKey": key,
        "messagelistId": result.messagelist_id,
        "messages": [
            {"messageId": e.message_id}
            if e.accepted
            else {"messageId": None, "error": {"code": e.error_code, "message": e.error_message}}
            for e in result.entries
        ],
    }


def results_of(batch: Batch, state: State) -> list[RowResult]:
    """Every row's outcome, from the state file's answers."""
    rows: list[RowResult] = []
    for index in sorted(state.done):
        answers = state.done[index]["messages"]
        for offset, (message, answer) in enumerate(zip(batch.chunk(index), answers, strict=True)):
            error = answer.get("error") or {}
            rows.append(
                RowResult(
                    row=index * batch.chunk_size + offset + 1,
                    to=message["to"],
                    message_id=answer.get("messageId"),
                    error_code=error.get("code"),
                    error_message=error.get("message"),
                )
            )
    return rows


def messagelist_ids(state: State) -> list[int]:
    return [int(state.done[i]["messagelistId"]) for i in sorted(state.done)]
