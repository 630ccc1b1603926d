"""Inbound messages, the numbers accounts own, and inbound webhook events (SPEC §10).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

`owned_numbers` says which account an inbound message belongs to; `inbound_messages`
keeps every one (unrouted ones with no account); an inbound event goes out through
the webhook outbox with its own webhook-id (`message_events.webhook_id`). The index
of messages by recipient finds the message a reply answers (`inReplyTo`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "owned_numbers",
        sa.Column("number", sa.String(16), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_owned_numbers_account", "owned_numbers", ["account_id"])
    op.create_table(
        "inbound_messages",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, nullable=True),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("parts", sa.Integer, nullable=False),
        sa.Column("incomplete", sa.Boolean, nullable=False),
        sa.Column("connector", sa.String(32), nullable=False),
        sa.Column("carrier_id", sa.String(65), nullable=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("in_reply_to", sa.String(32), nullable=True),
    )
    op.create_index("ix_inbound_messages_account", "inbound_messages", ["account_id", "id"])
    op.add_column("message_events", sa.Column("webhook_id", sa.String(64), nullable=True))
    op.create_index("ix_messages_recipient", "messages", ["recipient", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_recipient", "messages")
    with op.batch_alter_table("message_events") as batch:
        batch.drop_column("webhook_id")
    op.drop_index("ix_inbound_messages_account", "inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_index("ix_owned_numbers_account", "owned_numbers")
    op.drop_table("owned_numbers")
