"""Billing outbox: a next-attempt time (exponential backoff) so failing rows stop starving the rest;
studies: their stimulus's size in bytes, counted against the account's study storage, and the
owner's cap on their sessions; jobs: the
in-process queue that runs them, so a restarted process adopts only a dead one's jobs.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("billing_outbox", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_billing_outbox_next_attempt_at", "billing_outbox", ["next_attempt_at"])
    op.add_column("studies", sa.Column("stimulus_bytes", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("studies", sa.Column("max_sessions", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("runner", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("runner")
    with op.batch_alter_table("studies") as batch:  # SQLite drops columns by rebuilding the table
        batch.drop_column("stimulus_bytes")
        batch.drop_column("max_sessions")
    op.drop_index("ix_billing_outbox_next_attempt_at", "billing_outbox")
    with op.batch_alter_table("billing_outbox") as batch:
        batch.drop_column("next_attempt_at")
