"""Upstream batches: what was handed to an SMSBAT upstream, written before it is sent.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

After a crash, a message taken back is sent again in its batch, with the batch's
Idempotency-Key and body (docs/carriers.md, "Never twice").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_batches",
        sa.Column("connector", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("members", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_upstream_batches_created", "upstream_batches", ["created_at"])
    op.create_table(
        "upstream_batch_members",
        sa.Column("connector", sa.String(32), primary_key=True),
        sa.Column("message_id", sa.String(32), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_upstream_batch_members_created", "upstream_batch_members", ["created_at"])


def downgrade() -> None:
    op.drop_table("upstream_batch_members")
    op.drop_table("upstream_batches")
