"""Studies: the link variables an owner whitelists (e.g. a panel's age band), and the values each
session came with (only whitelisted keys are ever stored); read-only report links for the owner's
clients, revocable, their tokens derived from a nonce and the server's pepper and stored hashed.

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
    op.create_table(
        "report_links",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("study_id", sa.String(64), sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("report_links")
    with op.batch_alter_table("study_sessions") as batch:  # SQLite drops columns by rebuilding the table
        batch.drop_column("variables")
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("variable_keys")
