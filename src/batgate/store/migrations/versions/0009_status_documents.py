"""The status document of each message, kept current with every write.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

`GET /bat/message/{id}` then reads one column by primary key and answers it as it
is. Rows stored before this migration have none (NULL) until their next change:
their document is built from the row when it is read, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("status_doc", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("status_doc")
