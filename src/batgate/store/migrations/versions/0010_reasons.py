"""Why: the reason of each final status, and notes of failed attempts and ended steps.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("message_events", sa.Column("reason", sa.Text, nullable=True))
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "message_notes",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_message_notes_message", "message_notes", ["message_id"])
    op.create_index("ix_message_notes_at", "message_notes", ["at"])


def downgrade() -> None:
    op.drop_table("message_notes")
    with op.batch_alter_table("message_events") as batch:
        batch.drop_column("reason")
