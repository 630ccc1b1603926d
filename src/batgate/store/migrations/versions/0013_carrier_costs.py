"""Carrier costs: what a carrier charged for each step of a message.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

An SMSBAT upstream says what it billed for each message it carried (`billAmount`,
`billCurrency`); it is kept per step beside the customer's price (docs/carriers.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carrier_costs",
        sa.Column("message_id", sa.String(32), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("connector", sa.String(32), nullable=False),
        sa.Column("micros", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("carrier_costs")
