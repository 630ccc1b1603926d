"""An account's own rate limit (requests a second and burst), beside the gateway's.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

Set with `batgate accounts set-rate-limit` or the console's accounts page; NULL is
the gateway's `rate_limit.rate` and `rate_limit.burst` (docs/operations.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("rate_limit", sa.Float, nullable=True))
    op.add_column("accounts", sa.Column("rate_burst", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("rate_burst")
        batch.drop_column("rate_limit")
