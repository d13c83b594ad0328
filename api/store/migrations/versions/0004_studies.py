"""Audience studies and their participants' sessions; jobs may belong to a session.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("api_key_id", sa.Integer(), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("stimulus_duration_ms", sa.Float(), nullable=False),
        sa.Column("stimulus_key", sa.String(200), nullable=True),
        sa.Column("stimulus_content_type", sa.String(100), nullable=True),
        sa.Column("participant_token_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_studies_account_id", "studies", ["account_id"])
    op.create_table(
        "study_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("study_id", sa.String(64), sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("receipt_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stimulus_started_ms", sa.Float(), nullable=False),
        sa.Column("consent_version", sa.String(50), nullable=False),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("segment", sa.String(100), nullable=True),
        sa.Column("timeline", sa.LargeBinary(), nullable=True),
        sa.Column("micro_onsets", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_study_sessions_study_id", "study_sessions", ["study_id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("study_session_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("study_session_id")
    op.drop_index("ix_study_sessions_study_id", "study_sessions")
    op.drop_table("study_sessions")
    op.drop_index("ix_studies_account_id", "studies")
    op.drop_table("studies")
