"""Issue 19: the order of admission on billed routes, and bad text in any field (SQLite and PostgreSQL)."""
from __future__ import annotations

import io
import json

import pytest

from api.metering import Plan
from tests.conftest import sign_up
from tests.test_accounts import TINY_FACE, analyze, bearer
from tests.test_api import assert_problem

TWO_UNITS = {"free": Plan("free", 2, 1000.0, 1000), "paid": Plan("paid", None, 1000.0, 1000)}


def test_an_idempotent_replay_is_served_after_the_quota_is_spent(app_factory, assert_contract):
    client = app_factory(plans=TWO_UNITS).test_client()
    secret = sign_up(client)["api_key"]["secret"]
    first = analyze(client, secret, idempotency_key="paid-answer")
    assert analyze(client, secret).status_code == 200
    assert_problem(analyze(client, secret), 402, "quota_exceeded")
    replay = assert_contract(analyze(client, secret, idempotency_key="paid-answer"))
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == first.json


def test_two_file_parts_are_refused_naming_the_field(client, auth, assert_contract):
    body = {"file": [(io.BytesIO(TINY_FACE), "a.jpg"), (io.BytesIO(TINY_FACE), "b.jpg")], "detector": "skip"}
    response = assert_contract(client.post("/v1/analyze", headers=auth, data=body))
    assert_problem(response, 400, "invalid_request")
    assert "file" in response.json["errors"]


def test_a_repeated_form_field_is_refused_naming_it(client, auth):
    body = {"file": (io.BytesIO(TINY_FACE), "a.jpg"), "detector": ["skip", "dlib"]}
    response = client.post("/v1/analyze", headers=auth, data=body)
    assert_problem(response, 400, "invalid_request")
    assert "detector" in response.json["errors"]


NESTED = "[" * 100_000 + "]" * 100_000


def nested_json(field: str) -> str:
    return '{"%s": %s}' % (field, NESTED)


@pytest.mark.parametrize("path, field", [("/v1/analyze", "image_base64"), ("/v1/signin", "email"),
                                         ("/v1/keys", "name")])
def test_deeply_nested_json_is_400(app_factory, path, field):
    client = app_factory().test_client()
    secret = sign_up(client)["api_key"]["secret"]
    response = client.post(path, headers=bearer(secret), data=nested_json(field), content_type="application/json")
    assert_problem(response, 400, "invalid_request")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_client(request, app_factory):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    app = app_factory(url)
    yield app.test_client()
    app.extensions["emoscope"].db.engine.dispose()


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])
def test_nul_and_lone_surrogates_are_400_naming_the_field(db_client, bad):
    secret = sign_up(db_client)["api_key"]["secret"]
    body = json.dumps({"name": bad, "scopes": ["analyze"]})  # json.dumps escapes both as \u0000 / \ud800
    response = db_client.post("/v1/keys", headers=bearer(secret), data=body, content_type="application/json")
    assert_problem(response, 400, "invalid_request")
    assert "name" in response.json["errors"]
    signup = db_client.post("/v1/signup", data=json.dumps({"email": "x@example.com", "password": "long enough pw",
                                                           "account_name": bad}), content_type="application/json")
    assert_problem(signup, 400, "invalid_request")
    assert "account_name" in signup.json["errors"]


def test_a_nul_in_the_idempotency_key_is_400(client, auth):
    response = client.post("/v1/analyze", headers={**auth, "Idempotency-Key": "a\x00b"},
                           data={"file": (io.BytesIO(TINY_FACE), "a.jpg"), "detector": "skip"})
    assert_problem(response, 400, "invalid_request")


@pytest.mark.parametrize("fields, named", [({"consent": NESTED}, "consent"), ({"segment": "a\x00b"}, "segment"),
                                           ({"consent": '{"version": "v\\u0000", "accepted_at": "2026-12-02T10:00:00Z"}'},
                                            "consent")])
def test_bad_text_in_a_participant_session_is_400_naming_the_field(app_factory, fields, named):
    from tests.test_studies import create_study, submit_session

    client = app_factory().test_client()
    secret = sign_up(client)["api_key"]["secret"]
    study = create_study(client, secret).json
    response = submit_session(client, study, **fields)
    assert_problem(response, 400, "invalid_request")
    assert named in response.json["errors"]
