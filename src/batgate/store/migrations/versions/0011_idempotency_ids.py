"""Idempotency keys keep what they stored (list and ids); the answer follows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

The API renders a send's answer after the transaction that stored it, then keeps
it with the key; until then a replay is answered from the list and ids.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.add_column("idempotency_keys", sa.Column("messagelist_id", big_id, nullable=True))
    op.add_column("idempotency_keys", sa.Column("message_ids", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("message_ids")
        batch.drop_column("messagelist_id")
