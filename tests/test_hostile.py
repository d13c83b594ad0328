"""The hostile corpus (tests/hostile.py) against the API: each case gets its right answer, a 4xx
problem document or a correct 200/202, within 5 s of CPU."""

from __future__ import annotations

import time

import pytest

from tests.conftest import sign_up
from tests.hostile import SESSIONS, Case, cases
from tests.test_fuzz import PROBLEM_CODES

pytestmark = pytest.mark.data

CPU_SECONDS_PER_CASE = 5.0
CASES = cases()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, analyzer):
    """One app for the corpus; jobs are accepted and never run, so no other thread spends CPU meanwhile."""
    from api.web.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path_factory.mktemp("hostile")), analyzer=analyzer)
    services = app.extensions["emoscope"]
    services.db.migrate()
    services.queue.enqueue = lambda job_id: None
    client = app.test_client()
    owner = sign_up(client)["api_key"]["secret"]
    study = client.post(
        "/v1/studies",
        headers={"Authorization": f"Bearer {owner}"},
        json={"name": "corpus", "stimulus_duration_ms": 60_000},
    ).json
    return client, {"owner": owner, "participant": study["participant_token"]}, study["id"]


def test_the_corpus_is_large_and_every_case_is_named_once():
    assert len(CASES) >= 200
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_case(corpus, assert_contract, case: Case):
    client, secrets, study_id = corpus
    kwargs = case.request()
    headers = kwargs.pop("headers", {})
    if case.auth:
        headers["Authorization"] = f"Bearer {secrets[case.auth]}"
    address = f"10.{CASES.index(case) // 250}.{CASES.index(case) % 250}.1"  # sign-in is rate limited per address
    started = time.process_time()
    response = client.post(
        case.path.format(study=study_id), headers=headers, environ_base={"REMOTE_ADDR": address}, **kwargs
    )
    cpu = time.process_time() - started
    assert cpu < CPU_SECONDS_PER_CASE, f"{case.name} took {cpu:.1f} s of CPU"
    assert_contract(response)
    body = response.json
    if case.status is not None:
        assert response.status_code == case.status, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:500]
        assert response.mimetype == "application/problem+json" and body["code"] in PROBLEM_CODES
        assert case.code in (None, body["code"]), body
        assert case.field is None or case.field in body.get("errors", {}), body
        # RFC 7807's invalid_params, for clients to name the fields: one per field of `errors`.
        named = {param["name"].split(".")[0] for param in body.get("invalid_params", [])}
        assert named == {name if name != "_schema" else "body" for name in body.get("errors", {})}, body
    else:
        assert case.status is not None or case.may_succeed, f"{case.name} was accepted: {response.status_code}"
        assert response.status_code in (200, 201, 202)
        if response.status_code == 200 and case.path != SESSIONS:
            assert body["media"]["frames_analyzed"] >= 1
        if case.check:
            case.check(body)
