"""Suppression lists: the numbers each account may not send to (SPEC §11).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

A send to a number on its account's list is rejected as OPTED_OUT, checked with one
lookup per batch on the primary key (docs/api.md, "Opt-out").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("number", sa.String(16), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
