"""Carrier parts and early receipts: delivery receipts from carriers (SMPP).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carrier_parts",
        sa.Column("connector", sa.String(32), primary_key=True),
        sa.Column("smsc_id", sa.String(65), primary_key=True),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("carrier_ref", sa.String(64), nullable=False),
        sa.Column("parts", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_carrier_parts_ref", "carrier_parts", ["carrier_ref"])
    op.create_table(
        "carrier_receipts",
        sa.Column("connector", sa.String(32), primary_key=True),
        sa.Column("smsc_id", sa.String(65), primary_key=True),
        sa.Column("aliases", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index("ix_carrier_receipts_received", "carrier_receipts", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_carrier_receipts_received", table_name="carrier_receipts")
    op.drop_table("carrier_receipts")
    op.drop_index("ix_carrier_parts_ref", table_name="carrier_parts")
    op.drop_table("carrier_parts")
