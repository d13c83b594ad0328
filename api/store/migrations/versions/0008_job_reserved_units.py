"""Jobs: units reserved against the quota while queued or running, so async work cannot overrun it.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("reserved_units", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:  # SQLite drops columns by rebuilding the table
        batch.drop_column("reserved_units")
