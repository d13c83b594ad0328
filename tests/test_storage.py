"""Migrations and key storage on both SQLite (embedded default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from api.store import repository
from api.store.db import ApiKey, Database, utcnow

pytestmark = pytest.mark.postgres

PEPPER = "pepper"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'storage.db'}")
    return Database(request.getfixturevalue("postgres_url"))


def test_migrations_create_the_schema_and_are_idempotent(db):
    db.migrate()
    db.migrate()
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM api_keys")).scalar() == 0


def test_key_lifecycle(db):
    db.migrate()
    with db.session.begin() as session:
        account = repository.create_account(session, "acme")
        row, secret = repository.create_api_key(session, account, PEPPER, "ci", ("analyze",))
        key_id = row.id
    assert secret.startswith("emo_") and secret not in row.key_hash
    with db.session.begin() as session:
        found = repository.authenticate(session, secret, PEPPER)
        assert found is not None and found.id == key_id and found.last_used_at is not None
        assert repository.authenticate(session, secret + "x", PEPPER) is None
        assert repository.authenticate(session, secret, "other-pepper") is None
        assert repository.authenticate(session, "emo_" + "0" * 12 + "_guess", PEPPER) is None
        session.get(ApiKey, key_id).revoked_at = utcnow()
    with db.session.begin() as session:
        assert repository.authenticate(session, secret, PEPPER) is None


def test_last_used_is_written_at_most_once_a_minute(db):
    db.migrate()
    with db.session.begin() as session:
        account = repository.create_account(session, "acme")
        row, secret = repository.create_api_key(session, account, PEPPER)
        row.last_used_at = utcnow() - timedelta(seconds=10)
    with db.session.begin() as session:
        before = session.get(ApiKey, row.id).last_used_at
        repository.authenticate(session, secret, PEPPER)
        assert session.get(ApiKey, row.id).last_used_at == before


def test_models_and_migrations_agree(db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from api.store.db import Base

    db.migrate()
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_storage_lists_objects_under_a_prefix_with_their_age(kind, tmp_path, monkeypatch):
    from moto import mock_aws

    from api.store.storage import LocalStorage, S3Storage

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        if kind == "s3":
            storage = S3Storage("emoscope-test")
            storage.client.create_bucket(Bucket="emoscope-test")
        else:
            storage = LocalStorage(tmp_path / "objects")
        before = utcnow() - timedelta(minutes=1)
        for key in ("media/job_a", "media/job_b", "results/job_a.json"):
            storage.put(key, b"x")
        listed = dict(storage.list("media/"))
        assert sorted(listed) == ["media/job_a", "media/job_b"]
        assert all(before < modified <= utcnow() + timedelta(minutes=1) for modified in listed.values())
        assert list(storage.list("studies/")) == []
