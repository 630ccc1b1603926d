"""Initial schema: accounts, message lists, messages, status events, rates.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("webhook_url", sa.String(2048), nullable=True),
        sa.Column("webhook_secret", sa.String(128), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "messagelists",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("message_count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("messagelist_id", sa.Integer, nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("customer_message_id", sa.String(64), nullable=True),
        sa.Column("recipient", sa.String(16), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("chain", sa.Text, nullable=False),
        sa.Column("callback_url", sa.String(2048), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("steps", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("due_at", sa.Float, nullable=True),
        sa.Column("deadline", sa.Float, nullable=False),
        sa.Column("receipt", sa.String(16), nullable=True),
        sa.Column("carrier_ref", sa.String(64), nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", sa.Float, nullable=True),
        sa.Column("rate_micros", sa.BigInteger, nullable=True),
        sa.Column("rate_currency", sa.String(3), nullable=True),
        sa.Column("bill_micros", sa.BigInteger, nullable=True),
        sa.Column("bill_currency", sa.String(3), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    not_null_due = sa.text("due_at IS NOT NULL")
    op.create_index(
        "ix_messages_due",
        "messages",
        ["due_at"],
        sqlite_where=not_null_due,
        postgresql_where=not_null_due,
    )
    op.create_index("ix_messages_messagelist", "messages", ["messagelist_id"])
    has_ref = sa.text("carrier_ref IS NOT NULL")
    op.create_index(
        "ix_messages_carrier_ref",
        "messages",
        ["carrier_ref"],
        sqlite_where=has_ref,
        postgresql_where=has_ref,
    )
    op.create_table(
        "message_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_message_events_message", "message_events", ["message_id"])
    op.create_table(
        "rates",
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("prefix", sa.String(15), primary_key=True),
        sa.Column("micros", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("rates", "message_events", "messages", "messagelists", "accounts"):
        op.drop_table(table)
