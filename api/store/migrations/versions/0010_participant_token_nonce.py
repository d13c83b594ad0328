"""Studies: a nonce from which, with the server's pepper, the participant token is derived again
whenever the owner asks to see the link (NULL for studies made before: their random token was only
ever stored hashed, so their link is shown again only after a rotation).

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("studies", sa.Column("participant_token_nonce", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("studies") as batch:  # SQLite drops columns by rebuilding the table
        batch.drop_column("participant_token_nonce")
