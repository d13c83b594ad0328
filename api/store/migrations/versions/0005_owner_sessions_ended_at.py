"""Owners: when their console sessions were last ended (sign-out), so a copied cookie dies with it.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("owners", sa.Column("sessions_ended_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("owners") as batch:  # SQLite drops columns by rebuilding the table
        batch.drop_column("sessions_ended_at")
