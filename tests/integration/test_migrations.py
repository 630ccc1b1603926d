"""Migrations on a populated database: 64-bit ids (0007), and the head the store knows."""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from batgate.domain.messages import MessageType, NewMessage, Step
from batgate.store.database import HEAD_REVISION
from batgate.store.manager import Store
from databases import Databases, raw_connection


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("batgate.store") / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def test_the_store_knows_the_newest_migration() -> None:
    """A database at HEAD_REVISION is not handed to Alembic (Database.upgrade)."""
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def upgrade_to(url: str, revision: str) -> None:
    sync = url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(sync)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()


ID_COLUMNS = [
    ("messagelists", "id"),
    ("messages", "messagelist_id"),
    ("message_events", "id"),
    ("webhook_attempts", "id"),
    ("webhook_attempts", "event_id"),
]


async def test_ids_become_64_bit_on_a_populated_database(
    databases: Databases, backend: str, tmp_path: Path
) -> None:
    url = databases.url(backend, tmp_path, migrated=False)
    upgrade_to(url, "0006")
    store = Store.connect(url)
    try:
        step = Step(MessageType.SMS, "+380501234567", "Shop", "before", None, 60, 1)
        with raw_connection(url) as raw:  # rows as revision 0006 wrote them
            raw.execute(
                "INSERT INTO accounts (username, api_key_hash, webhook_secret, currency,"
                " disabled, created_at) VALUES ('alice', 'h', 'whsec_x', 'USD', ?, 1)",
                (False,),
            )
            account_id = raw.scalar("SELECT id FROM accounts WHERE username = 'alice'")
            raw.execute(
                "INSERT INTO messagelists (account_id, message_count, created_at) VALUES (?, 1, 1)",
                (account_id,),
            )
            list_id = raw.scalar("SELECT max(id) FROM messagelists")
            raw.execute(
                "INSERT INTO messages (id, messagelist_id, account_id, recipient, type, chain,"
                " status, step, steps, attempts, due_at, deadline, bill_currency, version,"
                " created_at, updated_at) VALUES ('m-before', ?, ?, ?, 'sms', ?, 'scheduled',"
                " 0, 'scheduled', 0, 1, 61, 'USD', 0, 1, 1)",
                (list_id, account_id, step.to, f"[{json.dumps(step.to_json())}]"),
            )
        before = ["m-before"]
        with raw_connection(url) as raw:
            raw.execute(
                "INSERT INTO message_events (message_id, account_id, status, at, state)"
                " VALUES (?, ?, 'processing', 1, 'delivered')",
                (before[0], account_id),
            )
            event = raw.scalar("SELECT max(id) FROM message_events")
            raw.execute(
                "INSERT INTO webhook_attempts (event_id, at, duration_ms) VALUES (?, 1, 2)",
                (event,),
            )
        await store.upgrade()  # to the head
        assert await store.get_message(before[0]) is not None
        # A row without a stored status document (before 0009) is answered all the same.
        found = await store.status_document(before[0])
        assert found is not None and json.loads(found[1])["deliverystatus"] == "scheduled"

        with raw_connection(url) as raw:
            assert raw.scalar("SELECT version_num FROM alembic_version") == HEAD_REVISION
            assert raw.scalar("SELECT event_id FROM webhook_attempts") == event
            if backend == "postgresql":
                types = {
                    (t, c): raw.scalar(
                        "SELECT data_type FROM information_schema.columns"
                        " WHERE table_name = ? AND column_name = ?",
                        (t, c),
                    )
                    for t, c in ID_COLUMNS
                }
                assert set(types.values()) == {"bigint"}, types
                # Numbering goes on past 2**31 - 1.
                raw.execute(
                    "SELECT setval(pg_get_serial_sequence('messagelists', 'id'), ?)", (2**31 + 5,)
                )
        account = await store.account_by_id(account_id)
        assert account is not None
        list_id, after = await store.insert_batch(account, [NewMessage(None, (step,))], time.time())
        if backend == "postgresql":
            assert list_id == 2**31 + 6
        record = await store.get_message(after[0])
        assert record is not None and record.messagelist_id == list_id
    finally:
        await store.close()
