"""Jobs: a kind, naming the module whose hooks end the job, so the job runner knows nothing of
studies; a study participant's recording is kind `study_session`.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("kind", sa.String(32), nullable=False, server_default="analysis"))
    op.execute("UPDATE jobs SET kind = 'study_session' WHERE study_session_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:  # SQLite drops columns by rebuilding the table
        batch.drop_column("kind")
