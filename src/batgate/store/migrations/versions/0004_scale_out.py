"""Scale-out: re-claims counted per message, shared rate-limit buckets, batch paging.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # How often a message was claimed again after a lease ran out: each such claim
    # may re-send a message whose hand-over was never recorded.
    op.add_column("messages", sa.Column("reclaims", sa.Integer, nullable=False, server_default="0"))
    # Paging a batch's messages in id order reads this index only.
    op.drop_index("ix_messages_messagelist", table_name="messages")
    op.create_index("ix_messages_messagelist", "messages", ["messagelist_id", "id"])
    # Token buckets of the per-account rate limit, shared by every API process.
    op.create_table(
        "rate_buckets",
        sa.Column("account_id", sa.Integer, primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("stamp", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
    op.drop_index("ix_messages_messagelist", table_name="messages")
    op.create_index("ix_messages_messagelist", "messages", ["messagelist_id"])
    op.drop_column("messages", "reclaims")
