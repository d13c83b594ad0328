"""Studies: the link variables an owner whitelists (e.g. a panel's age band), and the values each
session came with; only whitelisted keys are ever stored.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("studies", sa.Column("variable_keys", sa.Text(), nullable=True))
    op.add_column("study_sessions", sa.Column("variables", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("study_sessions") as batch:  # SQLite drops columns by rebuilding the table
        batch.drop_column("variables")
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("variable_keys")
