"""Retention: indexes by age, and the moment a message's content was redacted.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Old records are removed in small batches by the workers (store.retention): each
batch finds its rows through one of these indexes instead of a scan.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FINAL = sa.text("due_at IS NULL")
UNREDACTED = sa.text("due_at IS NULL AND redacted_at IS NULL")


def upgrade() -> None:
    op.add_column("messages", sa.Column("redacted_at", sa.Float, nullable=True))
    op.create_index(
        "ix_messages_final",
        "messages",
        ["updated_at"],
        sqlite_where=FINAL,
        postgresql_where=FINAL,
    )
    op.create_index(
        "ix_messages_unredacted",
        "messages",
        ["updated_at"],
        sqlite_where=UNREDACTED,
        postgresql_where=UNREDACTED,
    )
    op.create_index("ix_message_events_at", "message_events", ["at"])
    op.create_index("ix_webhook_attempts_at", "webhook_attempts", ["at"])
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created", "idempotency_keys")
    op.drop_index("ix_webhook_attempts_at", "webhook_attempts")
    op.drop_index("ix_message_events_at", "message_events")
    op.drop_index("ix_messages_unredacted", "messages")
    op.drop_index("ix_messages_final", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("redacted_at")
