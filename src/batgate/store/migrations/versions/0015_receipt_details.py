"""What a carrier said in a receipt: its status and error code, for the story.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

A receipt that came before its part was recorded is kept in `carrier_receipts`; its
`detail` (an SMSC's `stat`/`err`, an HTTP carrier's status value, an upstream's
status) now goes with it, so that the message's story can tell why a step was not
delivered, whichever came first (docs/carriers.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("carrier_receipts", sa.Column("detail", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("carrier_receipts") as table:
        table.drop_column("detail")
