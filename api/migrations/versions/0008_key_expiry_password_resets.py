"""Sign-in keys expire; owners' password-reset tokens (hashed, single use, expiring).

Revision ID: 0008
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_password_resets_owner_id", "password_resets", ["owner_id"])


def downgrade() -> None:
    op.drop_index("ix_password_resets_owner_id", "password_resets")
    op.drop_table("password_resets")
    with op.batch_alter_table("api_keys") as batch:  # SQLite drops columns by rebuilding the table
        batch.drop_column("expires_at")
