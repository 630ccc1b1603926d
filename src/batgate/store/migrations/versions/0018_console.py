"""The console: operators, their sessions, and the rollup of final messages.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

`operators` log in to `/console` (docs/console.md); `console_sessions` keeps each
session's token as its SHA-256 with its CSRF token. `message_rollup` counts messages
as they go final (per minute and per hour, account, channel, connector, status and
time to final), so the overview never scans `messages`; `messages.connector` says which
connector took a message's current step, and `ix_messages_created` lists the newest
messages first (the console's search).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("connector", sa.String(32), nullable=True))
    op.create_index("ix_messages_created", "messages", ["created_at"])
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("operator_id", sa.Integer, sa.ForeignKey("operators.id"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_console_sessions_expires", "console_sessions", ["expires_at"])
    op.create_table(
        "message_rollup",
        sa.Column("scale", sa.String(1), primary_key=True),
        sa.Column("slot", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("connector", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("message_rollup")
    op.drop_index("ix_console_sessions_expires", "console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("operators")
    op.drop_index("ix_messages_created", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("connector")
