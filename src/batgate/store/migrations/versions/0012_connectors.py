"""Connectors: the operator's drain switch, and what each process sees of each one.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

`batgate connectors drain NAME` / `enable NAME` write `connector_switches`, which
every engine reads every few seconds; each engine writes its view of each connector
to `connector_reports` for `batgate connectors` (docs/carriers.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connector_switches",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("drained", sa.Boolean, nullable=False),
        sa.Column("changed_at", sa.Float, nullable=False),
    )
    op.create_table(
        "connector_reports",
        sa.Column("connector", sa.String(32), primary_key=True),
        sa.Column("worker", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("links", sa.Integer, nullable=True),
        sa.Column("in_flight", sa.Integer, nullable=False),
        sa.Column("sent_minute", sa.Integer, nullable=False),
        sa.Column("errors_minute", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("last_error_at", sa.Float, nullable=True),
        sa.Column("reported_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("connector_reports")
    op.drop_table("connector_switches")
