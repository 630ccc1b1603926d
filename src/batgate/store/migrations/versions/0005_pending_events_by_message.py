"""Pending webhook events by message: the claim's "an earlier event is pending" check.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One index probe per candidate, whatever the planner's statistics say (without
    # ANALYZE, PostgreSQL scanned the whole pending index for every candidate).
    pending = sa.text("state = 'pending'")
    op.create_index(
        "ix_message_events_pending_by_message",
        "message_events",
        ["message_id", "id"],
        sqlite_where=pending,
        postgresql_where=pending,
    )


def downgrade() -> None:
    op.drop_index("ix_message_events_pending_by_message", table_name="message_events")
