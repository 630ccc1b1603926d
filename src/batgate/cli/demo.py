"""`batgate serve --demo`: a 'demo' account whose credentials survive restarts.

The API key and password are made once and saved beside the database (for
`sqlite:///./batgate.db`, `./batgate.demo.json`; for a server database, in the
working directory), readable by the owner only, so a key from yesterday's tour
still works today. `--new-demo-key` makes new ones. The database itself keeps only
their hashes, as for every account; the file is a convenience of the local demo,
and `serve` without `--demo` never reads or writes it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from batgate.domain.credentials import (
    hash_password,
    key_hash,
    new_api_key,
    new_webhook_secret,
    verify_password,
)
from batgate.store.manager import Store

USERNAME = "demo"


@dataclass(frozen=True)
class DemoCredentials:
    username: str
    api_key: str
    password: str

    def as_json(self) -> dict[str, str]:
        """The names `accounts create` prints."""
        return {"username": self.username, "apiKey": self.api_key, "password": self.password}

    @classmethod
    def new(cls) -> DemoCredentials:
        return cls(USERNAME, new_api_key(), secrets.token_urlsafe(12))


def credentials_path(database_url: str) -> Path:
    """Beside the SQLite file (its name with `.demo.json`), else `./batgate.demo.json`."""
    url = make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        return Path(database).with_suffix(".demo.json")
    return Path("batgate.demo.json")


def load_or_make(path: Path, *, renew: bool) -> tuple[DemoCredentials, bool]:
    """The saved credentials (unless `renew`), else new ones saved now; and whether new."""
    if not renew:
        try:
            saved = json.loads(path.read_text())
            return DemoCredentials(USERNAME, str(saved["apiKey"]), str(saved["password"])), False
        except (OSError, ValueError, KeyError, TypeError):
            pass  # none yet, or unreadable: make new ones
    made = DemoCredentials.new()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created readable by the owner only, then replaced in one step.
    partial = path.with_name(path.name + ".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(made.as_json(), out, indent=2)
        out.write("\n")
    partial.replace(path)
    return made, True


async def ensure_account(store: Store, creds: DemoCredentials, currency: str) -> None:
    """The demo account exists and answers to exactly these credentials."""
    account = await store.account_by_username(creds.username)
    if account is None:
        await store.create_account(
            creds.username,
            key_hash(creds.api_key),
            hash_password(creds.password),
            None,
            new_webhook_secret(),
            currency,
        )
        return
    by_key = await store.account_by_key_hash(key_hash(creds.api_key))
    changes: dict[str, object] = {}
    if by_key is None or by_key.id != account.id:
        changes["api_key_hash"] = key_hash(creds.api_key)
    if not verify_password(account.password_hash, creds.password):
        changes["password_hash"] = hash_password(creds.password)
    if changes:
        await store.update_account(creds.username, **changes)


def path_hint() -> str | None:
    """`export PATH=…` when the `batgate` on the PATH is not this one (e.g. under make)."""
    here = Path(sys.executable).parent
    found = shutil.which("batgate")
    if found is not None and Path(found).parent == here:
        return None
    return f'export PATH="{here}:$PATH"'
