"""Webhook outbox: delivery state on message events, attempts, endpoint settings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite supports it with constant defaults): no table rebuild,
    # so foreign keys pointing at these tables stay intact.
    for column in (
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("url", sa.String(2048), nullable=True),
        sa.Column("state", sa.String(16), nullable=False, server_default="none"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", sa.Float, nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered_at", sa.Float, nullable=True),
    ):
        op.add_column("message_events", column)
    pending = sa.text("state = 'pending'")
    op.create_index(
        "ix_message_events_pending",
        "message_events",
        ["next_attempt_at"],
        sqlite_where=pending,
        postgresql_where=pending,
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_webhook_attempts_event", "webhook_attempts", ["event_id"])
    for column in (
        sa.Column("webhook_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("webhook_disabled_reason", sa.Text, nullable=True),
        sa.Column("previous_webhook_secret", sa.String(128), nullable=True),
        sa.Column("previous_secret_until", sa.Float, nullable=True),
    ):
        op.add_column("accounts", column)


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        for column in (
            "previous_secret_until",
            "previous_webhook_secret",
            "webhook_disabled_reason",
            "webhook_enabled",
        ):
            batch.drop_column(column)
    op.drop_table("webhook_attempts")
    op.drop_index("ix_message_events_pending", "message_events")
    with op.batch_alter_table("message_events") as batch:
        for column in (
            "delivered_at",
            "last_error",
            "last_status",
            "claimed_until",
            "claimed_by",
            "next_attempt_at",
            "attempts",
            "state",
            "url",
            "payload",
        ):
            batch.drop_column(column)
