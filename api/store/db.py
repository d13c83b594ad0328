"""Database engine, tables and migrations. SQLite is the embedded default; PostgreSQL via psycopg 3."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on every database (SQLite drops the zone on its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    plan: Mapped[str] = mapped_column(String(20), default="free")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(100))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(100))
    # Mirrors Stripe's subscription status (kept current by the webhook); "none" before any.
    subscription_status: Mapped[str] = mapped_column(String(30), default="none")
    # Signs our job webhooks to this account (shown to its owners; not a credential for our API).
    webhook_secret: Mapped[str | None] = mapped_column(String(100))


class Owner(Base):
    """A person who manages an account: signs in with email and password."""

    __tablename__ = "owners"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The console's session is a signed cookie the server keeps no copy of: signing out can only end
    # it by refusing every session that began before this moment.
    sessions_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The public part of the key, shown in listings and used to find the row.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    # HMAC-SHA256 of the whole key under the server's pepper; the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    scopes: Mapped[str] = mapped_column(String(200), default="analyze")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set on keys issued by sign-in (short-lived); keys created on purpose do not expire.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PasswordReset(Base):
    """A reset link sent by email: the token itself is never stored, and works once, for a while."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiRequest(Base):
    """One analysis request. With an Idempotency-Key, its stored response is replayed on retry."""

    __tablename__ = "api_requests"
    __table_args__ = (UniqueConstraint("account_id", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # processing, succeeded; for job submissions: accepted, then succeeded or failed
    status: Mapped[str] = mapped_column(String(20), default="processing")
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UsageEvent(Base):
    """Billable units of one successful request; the unique request_id makes double counting impossible."""

    __tablename__ = "usage_events"
    __table_args__ = (Index("ix_usage_events_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    request_id: Mapped[str] = mapped_column(ForeignKey("api_requests.id"), unique=True)
    media_kind: Mapped[str] = mapped_column(String(10))
    units: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BillingOutbox(Base):
    """Usage waiting to be reported to Stripe, written in the same transaction as the usage event."""

    __tablename__ = "billing_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    usage_event_id: Mapped[int] = mapped_column(ForeignKey("usage_events.id"), unique=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(100))
    units: Mapped[int] = mapped_column(Integer)
    # Sent to Stripe as both the meter event identifier and the idempotency key.
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    # pending, sent; dead after too many failed attempts (counted in /metrics, replayed by hand)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # A failed row waits until then (exponential backoff), so rows that keep failing cannot hold
    # the head of the queue against the rows behind them. None: due now.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Job(Base):
    """An asynchronous analysis. Its media and result live in object storage, never in the database."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The submission's ledger entry: completing the job writes usage against it, exactly once.
    request_id: Mapped[str] = mapped_column(ForeignKey("api_requests.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued, running, succeeded, failed
    options: Mapped[str] = mapped_column(Text)  # JSON of the analysis options
    media_key: Mapped[str | None] = mapped_column(String(200))
    result_key: Mapped[str | None] = mapped_column(String(200))
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    frames_total: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)  # problem+json of a failed job
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_status: Mapped[str | None] = mapped_column(String(20))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Units held against the quota while the job is queued or running (its clip's length from its
    # packets); on completion its usage event, with the units actually decoded, takes their place.
    reserved_units: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # Which module's hooks end the job (api.domain.jobs.JobKind): "analysis" for the API's own jobs.
    kind: Mapped[str] = mapped_column(String(32), default="analysis", server_default="analysis")
    # Set for a study participant's recording: the job keeps its timeline there, not a result file.
    study_session_id: Mapped[str | None] = mapped_column(String(64))
    # The in-process queue holding the job ("inproc:<host>:<pid>"); None under Celery, or before a
    # process took it. A restarted process adopts the jobs of runners no longer alive.
    runner: Mapped[str | None] = mapped_column(String(100))


class Study(Base):
    """An audience study: opted-in viewers' webcam recordings while they watch one stimulus."""

    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The key that created the study: participants' sessions are metered against it.
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    name: Mapped[str] = mapped_column(String(200))
    stimulus_duration_ms: Mapped[float] = mapped_column(Float)
    stimulus_key: Mapped[str | None] = mapped_column(String(200))
    stimulus_content_type: Mapped[str | None] = mapped_column(String(100))
    # Counted against the plan's study storage per account.
    stimulus_bytes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The owner's cap on sessions, below the deployment's (Settings.study_max_sessions); None: that one.
    max_sessions: Mapped[int | None] = mapped_column(Integer)
    # The participant token can only submit sessions to this study; stored hashed like API keys.
    participant_token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    # With the pepper, derives the token again (studies.participant_token); NULL before migration 0010.
    participant_token_nonce: Mapped[str | None] = mapped_column(String(64))
    # JSON list of the link variables sessions may carry (studies.VARIABLE_KEY); NULL: none.
    variable_keys: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StudySession(Base):
    """One viewer's recording: only its timeline on the stimulus clock is kept (no media, no faces)."""

    __tablename__ = "study_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    receipt_hash: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="processing")  # studies.SESSION_STATUSES
    stimulus_started_ms: Mapped[float] = mapped_column(Float)
    consent_version: Mapped[str] = mapped_column(String(50))
    consented_at: Mapped[datetime] = mapped_column(UTCDateTime())
    segment: Mapped[str | None] = mapped_column(String(100))
    # JSON object of the link variables the session came with, whitelisted keys only (Study.variable_keys).
    variables: Mapped[str | None] = mapped_column(Text)
    timeline: Mapped[bytes | None] = mapped_column(LargeBinary)  # api.domain.audience.SessionTimeline.to_bytes
    micro_onsets: Mapped[str | None] = mapped_column(Text)  # JSON [[stimulus ms, emotion], ...]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReportLink(Base):
    """A read-only link to a study's report for the owner's client (/r/<token>), until it expires or is revoked."""

    __tablename__ = "report_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    # With the pepper, derives the token again (studies.report_link_token), so the owner can copy it later.
    nonce: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


def normalise_url(url: str) -> str:
    """Plain postgresql:// URLs go through psycopg 3, not the psycopg2 default."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):
            # WAL lets readers proceed while one worker writes.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")

        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(url)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
