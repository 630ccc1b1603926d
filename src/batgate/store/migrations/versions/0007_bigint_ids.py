"""64-bit ids on PostgreSQL for message lists, message events and webhook attempts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

`integer` columns (and the `integer` sequences that number them) run out after
2,147,483,647 rows: about a billion messages for `message_events`. On PostgreSQL
each column becomes `bigint`, and its sequence too. This rewrites the tables under
an exclusive lock: on a large database, run `batgate db upgrade` in a maintenance
window (docs/operations.md). SQLite's integer ids are 64-bit already: nothing to do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = [
    ("messagelists", "id"),
    ("messages", "messagelist_id"),
    ("message_events", "id"),
    ("webhook_attempts", "id"),
    ("webhook_attempts", "event_id"),
]
NUMBERED = ["messagelists", "message_events", "webhook_attempts"]


def _retype(to: sa.types.TypeEngine[int], sequence_type: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=to)
    for table in NUMBERED:
        sequence = bind.execute(
            sa.text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table}
        ).scalar()
        if sequence is not None:
            op.execute(f"ALTER SEQUENCE {sequence} AS {sequence_type}")


def upgrade() -> None:
    _retype(sa.BigInteger(), "bigint")


def downgrade() -> None:
    _retype(sa.Integer(), "integer")
