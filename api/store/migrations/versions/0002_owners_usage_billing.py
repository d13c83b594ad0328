"""Owners, plans and Stripe ids on accounts, request records, usage events, billing outbox.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("plan", sa.String(20), nullable=False, server_default="free"))
        batch.add_column(sa.Column("stripe_customer_id", sa.String(100), nullable=True))
        batch.add_column(sa.Column("stripe_subscription_id", sa.String(100), nullable=True))
        batch.add_column(sa.Column("subscription_status", sa.String(30), nullable=False, server_default="none"))
    op.create_table(
        "owners",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_owners_account_id", "owners", ["account_id"])
    op.create_table(
        "api_requests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("api_key_id", sa.Integer(), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("account_id", "idempotency_key"),
    )
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("request_id", sa.String(64), sa.ForeignKey("api_requests.id"), nullable=False, unique=True),
        sa.Column("media_kind", sa.String(10), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_usage_events_account_created", "usage_events", ["account_id", "created_at"])
    op.create_table(
        "billing_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("usage_event_id", sa.Integer(), sa.ForeignKey("usage_events.id"), nullable=False, unique=True),
        sa.Column("stripe_customer_id", sa.String(100), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(100), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_billing_outbox_status", "billing_outbox", ["status"])


def downgrade() -> None:
    op.drop_table("billing_outbox")
    op.drop_index("ix_usage_events_account_created", "usage_events")
    op.drop_table("usage_events")
    op.drop_table("api_requests")
    op.drop_index("ix_owners_account_id", "owners")
    op.drop_table("owners")
    with op.batch_alter_table("accounts") as batch:
        for column in ("subscription_status", "stripe_subscription_id", "stripe_customer_id", "plan"):
            batch.drop_column(column)
