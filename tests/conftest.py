"""Shared fixtures: real data from ../shared/data, one warmed Analyzer, an app with a key."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIResponse
from openapi_core.datatypes import RequestParameters
from sqlalchemy import create_engine, text

from api.domain.metering import Plan
from api.engine.analyzer import Analyzer
from api.store import repository
from api.store.db import normalise_url
from api.web.app import create_app
from api.wiring.config import DEFAULT_EMOTION_MODEL, REPO_ROOT, Settings

DATA_DIR = Path(os.environ.get("EMOSCOPE_DATA_DIR", REPO_ROOT.parent / "shared" / "data")).resolve()
if not (DATA_DIR / "faces").is_dir():
    raise pytest.UsageError(
        f"real test data not found at {DATA_DIR}; set EMOSCOPE_DATA_DIR to the shared data folder "
        "(../shared/data beside the repository)"
    )

FACES = DATA_DIR / "faces"
VIDEOS = DATA_DIR / "videos"


@pytest.fixture(scope="session")
def analyzer(tmp_path_factory) -> Analyzer:
    return Analyzer(tmp_path_factory.mktemp("deepface"), DEFAULT_EMOTION_MODEL)


# Generous limits so tests are never throttled by accident; rate-limit tests set their own.
UNTHROTTLED = {"free": Plan("free", 1_000_000, 10_000.0, 10_000), "paid": Plan("paid", None, 10_000.0, 10_000)}


def make_settings(state_dir: Path, database_url: str | None = None, **overrides) -> Settings:
    return Settings(
        **{
            "database_url": database_url or f"sqlite:///{state_dir / 'test.db'}",
            "state_dir": state_dir,
            "api_key_pepper": "test-pepper",
            "plans": UNTHROTTLED,
            **overrides,
        }
    )


@pytest.fixture(scope="session")
def app(tmp_path_factory, analyzer):
    app = create_app(make_settings(tmp_path_factory.mktemp("state")), analyzer=analyzer)
    app.extensions["emoscope"].db.migrate()
    return app


@pytest.fixture(scope="session")
def api_key(app) -> str:
    services = app.extensions["emoscope"]
    with services.db.session.begin() as session:
        account = repository.create_account(session, "tests")
        _, secret = repository.create_api_key(session, account, services.settings.api_key_pepper)
    return secret


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def auth(api_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture(scope="session")
def contract() -> OpenAPI:
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_file_path(str(REPO_ROOT / "openapi.yaml"), config=config)


class OperationOnly:
    """Names the operation a response answers; the request body was consumed by the app already."""

    host_url = "http://127.0.0.1:8000"
    content_type = "application/json"
    body = b""

    def __init__(self, method: str, path: str) -> None:
        self.method, self.path = method.lower(), path
        self.parameters = RequestParameters()


@pytest.fixture()
def assert_contract(contract):
    """Validate a Flask test response against openapi.yaml's schema for its operation and status."""

    def check(response):
        request = OperationOnly(response.request.method, response.request.path)
        contract.validate_response(request, WerkzeugOpenAPIResponse(response))
        return response

    return check


@pytest.fixture()
def app_factory(tmp_path_factory, analyzer):
    """Build a migrated app with its own database and settings (the shared Analyzer is reused)."""

    def build(database_url: str | None = None, **overrides):
        app = create_app(make_settings(tmp_path_factory.mktemp("app"), database_url, **overrides), analyzer=analyzer)
        app.extensions["emoscope"].db.migrate()
        return app

    return build


def sign_up(client, email: str = "owner@example.com", account_name: str = "Acme") -> dict:
    """Sign up through the API; returns the response body (account, owner, api_key with secret)."""
    response = client.post(
        "/v1/signup", json={"email": email, "password": "correct horse battery", "account_name": account_name}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json


POSTGRES_URL = os.environ.get("EMOSCOPE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture()
def postgres_url():
    """A URL whose connections live in a fresh schema of the machine's PostgreSQL, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(POSTGRES_URL))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
