"""Sign-in keys expire; owners' password-reset tokens (hashed, single use, expiring); stored
answers of study sessions lose the receipt they used to keep (a replay now issues a new one).

Revision ID: 0007
Revises: 0006
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
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
    connection = op.get_bind()
    stored = connection.execute(sa.text("SELECT id, response_body FROM api_requests WHERE response_body LIKE :receipt"),
                                {"receipt": '%"receipt"%'}).all()
    for request_id, body in stored:
        answer = json.loads(body)
        if isinstance(answer, dict) and answer.pop("receipt", None) is not None:
            connection.execute(sa.text("UPDATE api_requests SET response_body = :body WHERE id = :id"),
                               {"body": json.dumps(answer), "id": request_id})


def downgrade() -> None:
    op.drop_index("ix_password_resets_owner_id", "password_resets")
    op.drop_table("password_resets")
    with op.batch_alter_table("api_keys") as batch:  # SQLite drops columns by rebuilding the table
        batch.drop_column("expires_at")
