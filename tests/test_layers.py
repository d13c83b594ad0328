"""The service's layers: jobs know nothing of studies, job options are stored through a versioned
schema, use cases live outside the blueprints, and blueprints import no blueprint."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from api.store.db import Job
from tests.conftest import sign_up
from tests.samples import webm_with_random_blocks
from tests.test_accounts import TINY_FACE
from tests.test_admission import bearer_post

API = Path(__file__).resolve().parents[1] / "api"


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, with `from a import b` counted as both `a` and `a.b`."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_jobs_import_nothing_of_studies_and_accounts_nothing_of_jobs():
    assert "api.domain.studies" not in imported_modules(API / "domain" / "jobs.py")
    assert "study" not in (API / "domain" / "jobs.py").read_text().lower()
    assert "api.domain.jobs" not in imported_modules(API / "domain" / "accounts.py")


@pytest.fixture()
def held_jobs(app_factory, monkeypatch):
    """An app whose queue holds jobs until the test runs them, and an account's key."""
    app = app_factory()
    queued = []
    monkeypatch.setattr(app.extensions["emoscope"].queue, "enqueue", queued.append)
    client = app.test_client()
    return app, client, sign_up(client)["api_key"]["secret"], queued


def test_job_options_are_stored_with_their_schema_version(held_jobs):
    app, client, secret, queued = held_jobs
    assert bearer_post(client, secret, TINY_FACE, detector="skip", **{"async": "true"}).status_code == 202
    with app.extensions["emoscope"].db.session.begin() as session:
        stored = json.loads(session.get(Job, queued[0]).options)
    assert stored["version"] == 1 and stored["detector"] == "skip"


def test_a_job_stored_before_options_were_versioned_still_runs(held_jobs):
    from api.domain import jobs
    from api.engine.analyzer import AnalysisOptions

    app, client, secret, queued = held_jobs
    assert bearer_post(client, secret, TINY_FACE, detector="skip", **{"async": "true"}).status_code == 202
    services = app.extensions["emoscope"]
    with services.db.session.begin() as session:  # as rows were written before the schema had a version
        session.get(Job, queued[0]).options = json.dumps(dataclasses.asdict(AnalysisOptions(detector="skip")))
    assert jobs.execute(services.jobs, queued[0]) == "succeeded"


def test_options_of_an_unknown_schema_version_are_refused():
    from api.domain import jobs

    with pytest.raises(ValueError, match="version 2"):
        jobs.load_options(json.dumps({"version": 2, "detector": "skip"}))


def test_a_job_kind_is_told_when_its_jobs_succeed_or_fail(held_jobs):
    from api.domain import jobs

    app, client, secret, queued = held_jobs
    context = app.extensions["emoscope"].jobs
    ended = []
    context.kinds["probe"] = jobs.JobKind(
        on_done=lambda session, job, analysis: ended.append(("done", job.id)),
        on_failed=lambda session, job: ended.append(("failed", job.id)),
    )
    assert bearer_post(client, secret, TINY_FACE, detector="skip", **{"async": "true"}).status_code == 202
    assert bearer_post(client, secret, webm_with_random_blocks(), **{"async": "true"}).status_code == 202
    with app.extensions["emoscope"].db.session.begin() as session:
        for job_id in queued:
            session.get(Job, job_id).kind = "probe"
    assert [jobs.execute(context, job_id) for job_id in queued] == ["succeeded", "failed"]
    assert ended == [("done", queued[0]), ("failed", queued[1])]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_jobs_queued_before_kinds_existed_keep_their_kind(backend, request, tmp_path):
    """Migration 0009: a study session's job queued before the upgrade still ends as a session's."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from api.store.db import MIGRATIONS, Database

    db = Database(
        f"sqlite:///{tmp_path / 'kinds.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0008")
        connection.execute(
            text("INSERT INTO accounts (name, plan, created_at) VALUES ('a', 'free', CURRENT_TIMESTAMP)")
        )
        account_id = connection.execute(text("SELECT id FROM accounts")).scalar()
        connection.execute(
            text(
                "INSERT INTO api_keys (account_id, prefix, key_hash, name, scopes, created_at) "
                "VALUES (:account, 'p', 'h', 'k', 'analyze', CURRENT_TIMESTAMP)"
            ),
            {"account": account_id},
        )
        key_id = connection.execute(text("SELECT id FROM api_keys")).scalar()
        for job_id, session_id in (("job_api", None), ("job_session", "ses_1")):
            connection.execute(
                text(
                    "INSERT INTO api_requests (id, account_id, api_key_id, fingerprint, status, "
                    "created_at) VALUES (:id, :account, :key, 'f', 'accepted', CURRENT_TIMESTAMP)"
                ),
                {"id": f"req_{job_id}", "account": account_id, "key": key_id},
            )
            connection.execute(
                text(
                    "INSERT INTO jobs (id, account_id, request_id, status, options, frames_done, "
                    "attempts, created_at, study_session_id) VALUES (:id, :account, :request, "
                    "'queued', '{}', 0, 0, CURRENT_TIMESTAMP, :session)"
                ),
                {"id": job_id, "account": account_id, "request": f"req_{job_id}", "session": session_id},
            )
        command.upgrade(config, "0009")
        kinds = dict(connection.execute(text("SELECT id, kind FROM jobs")).all())
    assert kinds == {"job_api": "analysis", "job_session": "study_session"}


ROUTES = API / "web" / "routes"
USE_CASES = (
    "api.usecases.admission",
    "api.usecases.submission",
    "api.domain.billing",
    "api.wiring.services",
    "api.domain.jobs",
    "api.domain.studies",
    "api.domain.accounts",
)


def blueprint_modules() -> set[str]:
    return {f"api.web.routes.{path.stem}" for path in ROUTES.glob("*.py") if "Blueprint(" in path.read_text()}


def test_blueprints_import_no_blueprint():
    blueprints = blueprint_modules()
    assert {"api.web.routes.console", "api.web.routes.analyze", "api.web.routes.studies"} <= blueprints
    for module in blueprints:
        path = ROUTES / f"{module.rsplit('.', 1)[1]}.py"
        assert imported_modules(path) & blueprints == set(), module


def test_use_cases_never_import_flask():
    import subprocess
    import sys

    code = f"import sys\nfor m in {USE_CASES!r}: __import__(m)\nprint('flask' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=API.parent
    ).stdout.strip()
    assert loaded == "False"


def test_handlers_reach_the_services_through_one_typed_accessor():
    readers = [
        path.relative_to(API.parent).as_posix()
        for path in API.rglob("*.py")
        if 'extensions["emoscope"]' in path.read_text()
    ]
    assert readers == ["api/web/context.py"]
    assert not [path.name for path in API.rglob("*.py") if "def _services(" in path.read_text()]


def test_the_services_name_protocols_that_their_implementations_meet(tmp_path):
    import typing

    from api.store.ratelimit import MemoryRateLimiter, RateLimiter
    from api.store.storage import LocalStorage, Storage
    from api.wiring.services import Queue, Services

    hints = typing.get_type_hints(Services)
    assert (hints["rate_limiter"], hints["queue"]) == (RateLimiter, Queue)
    assert hints["jobs"].__annotations__["storage"] in ("Storage", Storage)
    assert isinstance(MemoryRateLimiter(), RateLimiter) and isinstance(LocalStorage(tmp_path), Storage)
