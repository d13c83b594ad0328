"""Failures an operator must hear about are logged: a job that failed, a webhook given up on."""

from __future__ import annotations

import logging

import pytest

from api.domain import jobs
from tests.conftest import sign_up
from tests.samples import webm_with_random_blocks
from tests.test_accounts import TINY_FACE
from tests.test_admission import bearer_post


def _queued_job(app_factory, monkeypatch, data: bytes, **fields) -> tuple[object, str]:
    app = app_factory()
    services = app.extensions["emoscope"]
    queued: list[str] = []
    monkeypatch.setattr(services.queue, "enqueue", queued.append)  # the test runs the job itself
    client = app.test_client()
    secret = sign_up(client)["api_key"]["secret"]
    assert bearer_post(client, secret, data, **{"async": "true"}, **fields).status_code == 202
    return services.jobs, queued[0]


class Warnings(logging.Handler):
    """Records from api.domain.jobs (the app replaces the root logger's handlers, caplog's among them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def about(self, job_id: str) -> list[logging.LogRecord]:
        return [r for r in self.records if getattr(r, "job_id", None) == job_id]


@pytest.fixture()
def warnings():
    handler = Warnings()
    logging.getLogger("api.domain.jobs").addHandler(handler)
    yield handler
    logging.getLogger("api.domain.jobs").removeHandler(handler)


def test_a_failed_job_is_logged_with_its_code(app_factory, monkeypatch, warnings):
    context, job_id = _queued_job(app_factory, monkeypatch, webm_with_random_blocks())
    assert jobs.execute(context, job_id) == "failed"
    [record] = warnings.about(job_id)
    assert record.code and record.code in record.getMessage()


def test_a_webhook_given_up_is_logged(app_factory, monkeypatch, warnings):
    context, job_id = _queued_job(app_factory, monkeypatch, TINY_FACE, detector="skip")
    assert jobs.execute(context, job_id) == "succeeded"
    jobs.give_up_webhook(context, job_id)
    assert len(warnings.about(job_id)) == 1
