"""`Client` (blocking) and `AsyncClient` (asyncio): the same surface, one with `await`."""

from __future__ import annotations

import asyncio
import inspect
import time
from datetime import date
from typing import Any, Awaitable, Callable, List, Mapping, Optional, Sequence, Union

import httpx

from . import _base
from ._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_TIMEOUT,
    BaseClient,
    MediaInput,
    RequestSpec,
    Timeout,
)
from ._exceptions import APITimeoutError, EmoscopeError
from ._models import (
    Account,
    ApiKey,
    DataDeletion,
    ImageResult,
    Job,
    ReportLink,
    SignUpResult,
    Study,
    StudyComparison,
    StudyReport,
    Subscription,
    Usage,
    VideoResult,
)

AnalysisResultType = Union[ImageResult, VideoResult]
ProgressCallback = Callable[[Job], Any]
DEFAULT_JOB_TIMEOUT = 1800.0
DEFAULT_POLL_INTERVAL = 1.0


def _job_timeout_error(job: Job, timeout: Optional[float]) -> APITimeoutError:
    return APITimeoutError(
        f"job {job.id} still {job.status} after {timeout:g} s "
        f"({job.progress.frames_done}/{job.progress.frames_total or '?'} frames)"
    )


# ---- blocking --------------------------------------------------------------------------------


class Client(BaseClient):
    """Blocking client.

        with emoscope.Client(api_key="emo_...") as client:
            result = client.analyze("photo.jpg")
            print(result.faces[0].emotions.dominant)

    `api_key` defaults to $EMOSCOPE_API_KEY, `base_url` to $EMOSCOPE_BASE_URL (else
    http://127.0.0.1:8000). Pass `http_client` to bring your own httpx.Client (proxies, event hooks,
    transports); the SDK then leaves closing it to you.
    """

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        default_headers: Optional[Mapping[str, str]] = None,
        http_client: Optional[httpx.Client] = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            default_headers=default_headers,
        )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client()
        self.keys = Keys(self)
        self.jobs = Jobs(self)
        self.studies = Studies(self)
        self.usage = UsageResource(self)
        self.account = AccountResource(self)
        self.billing = Billing(self)

    def with_options(self, **overrides: Any) -> Client:
        """A copy with some settings changed (e.g. `max_retries=0`), sharing the connection pool."""
        return Client(**self._copy_kwargs(overrides), http_client=self._http)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _request(self, spec: RequestSpec) -> httpx.Response:
        kwargs = self._request_kwargs(spec)
        attempt = 0
        while True:
            try:
                response = self._http.request(spec.method, self._url(spec.path), **kwargs)
            except httpx.TransportError as exc:
                error: EmoscopeError = self._connection_error(exc)
                delay = self._retry_delay(spec, attempt, error, exc)
                if delay is None:
                    raise error from exc
            else:
                if response.is_success:
                    return response
                error = self._error_from_response(response)
                delay = self._retry_delay(spec, attempt, error)
                if delay is None:
                    raise error
            self._log_retry(spec, attempt, delay, error)
            time.sleep(delay)
            attempt += 1

    def analyze(
        self,
        file: MediaInput,
        *,
        detector: Optional[str] = None,
        min_face_size: Optional[int] = None,
        max_faces: Optional[int] = None,
        return_landmarks: Optional[bool] = None,
        return_mesh: Optional[bool] = None,
        fps: Optional[float] = None,
        micro_expressions: Union[bool, Mapping[str, Any], None] = None,
        extra_fields: Optional[Mapping[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
        on_progress: Optional[ProgressCallback] = None,
        job_timeout: Optional[float] = DEFAULT_JOB_TIMEOUT,
    ) -> AnalysisResultType:
        """Analyse an image or a clip (a path, bytes, or a binary file object) and return the result.

        Options left as None take the API's defaults. `micro_expressions` is a bool or
        `{"enabled": bool, "sensitivity": 0..1}`. An Idempotency-Key (uuid4 unless you pass one) goes
        with the request and stays the same on its retries, so a retry is never analysed or billed twice.
        Clips longer than the API's synchronous limit (20 s by default) come back as a job: this call
        then waits for it (up to `job_timeout` seconds, calling `on_progress(job)` as frames are done)
        and returns its result, or raises what a failed job's problem maps to.
        """
        content, filename = _base.media_bytes(file)
        response = self._request(
            _base.analyze_spec(
                content,
                filename,
                detector=detector,
                min_face_size=min_face_size,
                max_faces=max_faces,
                return_landmarks=return_landmarks,
                return_mesh=return_mesh,
                fps=fps,
                micro_expressions=micro_expressions,
                extra_fields=extra_fields,
                idempotency_key=idempotency_key,
                timeout=timeout,
            )
        )
        if response.status_code == 202:
            job = self._job(response)
            return self.jobs.wait(job, timeout=job_timeout, on_progress=on_progress).result_or_raise()
        return self._analysis(response)

    def sign_up(self, email: str, password: str, account_name: str) -> SignUpResult:
        """Create an account and its owner; the answer carries a first admin key (`.api_key.secret`)."""
        return SignUpResult.from_dict(self._request(_base.sign_up_spec(email, password, account_name)).json())

    def sign_in(self, email: str, password: str, key_name: Optional[str] = None) -> ApiKey:
        """A short-lived admin key for an owner's email and password (see `.expires_at`); it replaces
        the key an earlier sign-in issued under the same `key_name`."""
        return ApiKey.from_dict(self._request(_base.sign_in_spec(email, password, key_name)).json()["api_key"])


class _Resource:
    def __init__(self, client: Client) -> None:
        self._client = client


class Keys(_Resource):
    """API keys of the account (needs a key with the `admin` scope)."""

    def create(self, name: str = "", scopes: Sequence[str] = ("analyze",)) -> ApiKey:
        """A new key; its `secret` is shown only in this answer."""
        return ApiKey.from_dict(self._client._request(_base.keys_create_spec(name, scopes)).json())

    def list(self) -> List[ApiKey]:
        """Every key of the account, revoked ones included (no secrets)."""
        return [ApiKey.from_dict(k) for k in self._client._request(RequestSpec("GET", "/v1/keys")).json()["data"]]

    def revoke(self, key: Union[int, ApiKey]) -> None:
        """Revoke a key by id (or ApiKey); revoking twice is fine."""
        self._client._request(RequestSpec("DELETE", f"/v1/keys/{_base.key_id(key)}"))


class Jobs(_Resource):
    """Asynchronous analyses: submit, follow progress, collect the result, delete."""

    def create(
        self,
        file: MediaInput,
        *,
        webhook_url: Optional[str] = None,
        detector: Optional[str] = None,
        min_face_size: Optional[int] = None,
        max_faces: Optional[int] = None,
        return_landmarks: Optional[bool] = None,
        return_mesh: Optional[bool] = None,
        fps: Optional[float] = None,
        micro_expressions: Union[bool, Mapping[str, Any], None] = None,
        extra_fields: Optional[Mapping[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> Job:
        """Submit an analysis as a job (`async=true`); returns at once with the queued Job. With
        `webhook_url` the API POSTs the outcome there, signed (see emoscope.webhooks). Retries carry
        the same Idempotency-Key, so they return the same job rather than a second one."""
        content, filename = _base.media_bytes(file)
        return self._client._job(
            self._client._request(
                _base.analyze_spec(
                    content,
                    filename,
                    detector=detector,
                    min_face_size=min_face_size,
                    max_faces=max_faces,
                    return_landmarks=return_landmarks,
                    return_mesh=return_mesh,
                    fps=fps,
                    micro_expressions=micro_expressions,
                    extra_fields=extra_fields,
                    idempotency_key=idempotency_key,
                    timeout=timeout,
                    run_async=True,
                    webhook_url=webhook_url,
                )
            )
        )

    def get(self, job: Union[str, Job]) -> Job:
        """Status, progress and, once succeeded, the typed result."""
        return self._client._job(self._client._request(RequestSpec("GET", _base.job_path(job))))

    def delete(self, job: Union[str, Job]) -> None:
        """Delete the job, its media and its result now."""
        self._client._request(RequestSpec("DELETE", _base.job_path(job)))

    def wait(
        self,
        job: Union[str, Job],
        *,
        timeout: Optional[float] = DEFAULT_JOB_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_progress: Optional[ProgressCallback] = None,
    ) -> Job:
        """Poll until the job succeeded or failed and return it (check `.status`, or call
        `.result_or_raise()`). `on_progress(job)` is called whenever status or progress changes.
        Raises APITimeoutError after `timeout` seconds (None waits for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay, seen = 0.1, None
        current = self.get(job)
        while True:
            state = (current.status, current.progress)
            if on_progress is not None and state != seen:
                on_progress(current)
            seen = state
            if current.done:
                return current
            delay = _base.next_poll(delay, poll_interval)
            if deadline is not None and time.monotonic() + delay > deadline:
                raise _job_timeout_error(current, timeout)
            time.sleep(delay)
            current = self.get(current)


class Studies(_Resource):
    """Audience studies (needs a key with the `admin` scope): create one, share its participant
    page, read the report, delete it with everything it holds."""

    def create(
        self,
        name: str,
        stimulus_duration_ms: float,
        *,
        stimulus: Optional[MediaInput] = None,
        max_sessions: Optional[int] = None,
        variables: Sequence[str] = (),
    ) -> Study:
        """A new study with its `participant_token` and `participant_path`. `stimulus` (a video) is
        stored and played to participants on their page; past `max_sessions` sessions it refuses more.
        `variables` (up to 5) are the participant link's parameters kept with each session (a panel's
        `?age=18-24`), for the report's `segment` filter and breakdown; nothing else on the link is kept."""
        spec = _base.study_create_spec(name, stimulus_duration_ms, stimulus, max_sessions, variables)
        return Study.from_dict(self._client._request(spec).json())

    def get(self, study: Union[str, Study]) -> Study:
        return Study.from_dict(self._client._request(RequestSpec("GET", _base.study_path(study))).json())

    def rotate_participant_token(self, study: Union[str, Study]) -> Study:
        """A new participant token and page; the old ones stop working. The study is billed to this
        client's key from now on (how a study whose key was revoked takes sessions again)."""
        spec = RequestSpec("POST", _base.study_path(study, "/participant-token"))
        return Study.from_dict(self._client._request(spec).json())

    def report(
        self, study: Union[str, Study], *, bucket_ms: Optional[int] = None, segment: Optional[Mapping[str, str]] = None
    ) -> StudyReport:
        """Per second (or `bucket_ms`, a multiple of 100) of the stimulus: viewers, emotions with 95%
        intervals, micro-expressions; top moments; summary scores; the breakdown by link variable. With
        `segment` ({"age": "18-24"}), only the sessions whose link carried those values."""
        spec = _base.study_report_spec(study, bucket_ms, segment=segment)
        return StudyReport.from_dict(self._client._request(spec).json())

    def report_csv(
        self,
        study: Union[str, Study],
        *,
        bucket_ms: Optional[int] = None,
        table: str = "seconds",
        segment: Optional[Mapping[str, str]] = None,
    ) -> str:
        """The report as CSV text: one row per bucket, or per summary score (table="summary"), top moment
        ("moments") or link variable value and score ("breakdown")."""
        return self._client._request(_base.study_report_spec(study, bucket_ms, "text/csv", table, segment)).text

    def report_pdf(
        self, study: Union[str, Study], *, bucket_ms: Optional[int] = None, segment: Optional[Mapping[str, str]] = None
    ) -> bytes:
        """The report as a one-page PDF to hand over (the bytes, to write to a .pdf file): the chart of
        mean emotions with their 95% bands and the attention curve, and the summary scores; filtered
        by `segment` like `report`."""
        spec = _base.study_report_spec(study, bucket_ms, "application/pdf", segment=segment)
        return self._client._request(spec).content

    def create_report_link(self, study: Union[str, Study], *, expires_in_days: Optional[int] = None) -> ReportLink:
        """A read-only link to the study's report for a client (`path`, /r/<token> on the API's host), for
        `expires_in_days` (30 by default, at most 365) unless revoked."""
        return ReportLink.from_dict(self._client._request(_base.report_link_create_spec(study, expires_in_days)).json())

    def report_links(self, study: Union[str, Study]) -> List[ReportLink]:
        """The study's client links, live, revoked or expired, oldest first."""
        spec = RequestSpec("GET", _base.study_path(study, "/report-links"))
        return [ReportLink.from_dict(item) for item in self._client._request(spec).json()["data"]]

    def revoke_report_link(self, study: Union[str, Study], link: Union[str, ReportLink]) -> None:
        """The link stops opening the report at once."""
        self._client._request(RequestSpec("DELETE", _base.report_link_path(study, link)))

    def compare(self, studies: Sequence[Union[str, Study]]) -> StudyComparison:
        """Two to five of this account's studies side by side (e.g. cuts of one ad): curves on one stimulus
        clock, summary scores, and each study's differences from the first with bootstrap intervals."""
        return StudyComparison.from_dict(self._client._request(_base.study_compare_spec(studies)).json())

    def delete(self, study: Union[str, Study]) -> None:
        """Delete the study, its stimulus and every session's results."""
        self._client._request(RequestSpec("DELETE", _base.study_path(study)))


class UsageResource(_Resource):
    def get(self, from_: Union[date, str, None] = None, to: Union[date, str, None] = None) -> Usage:
        """Units and requests per UTC day, both ends inclusive (default: this month so far)."""
        return Usage.from_dict(self._client._request(_base.usage_spec(from_, to)).json())


class AccountResource(_Resource):
    def get(self) -> Account:
        """Plan, quota, rate limit and billing state."""
        return Account.from_dict(self._client._request(RequestSpec("GET", "/v1/account")).json())

    def delete_data(self) -> DataDeletion:
        """Delete every stored job, result, study and stored answer of the account (usage is kept)."""
        return DataDeletion.from_dict(self._client._request(RequestSpec("DELETE", "/v1/account/data")).json())


class Billing(_Resource):
    """The paid plan through Stripe (needs a key with the `admin` scope and a deployment with billing)."""

    def subscribe(self, payment_method: Optional[str] = None) -> Subscription:
        """Move to the metered paid plan; `payment_method` is a PaymentMethod id from Stripe.js."""
        return Subscription.from_dict(self._client._request(_base.subscribe_spec(payment_method)).json())

    def portal_url(self, return_url: str) -> str:
        """A Stripe customer portal link (invoices, cards, cancellation) that returns to `return_url`."""
        url: str = self._client._request(_base.portal_spec(return_url)).json()["url"]
        return url


# ---- asyncio ---------------------------------------------------------------------------------


class AsyncClient(BaseClient):
    """The asyncio twin of `Client`: every call is awaited.

    async with emoscope.AsyncClient() as client:
        result = await client.analyze("clip.mp4", fps=5)
    """

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        default_headers: Optional[Mapping[str, str]] = None,
        http_client: Optional[httpx.AsyncClient] = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            default_headers=default_headers,
        )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient()
        self.keys = AsyncKeys(self)
        self.jobs = AsyncJobs(self)
        self.studies = AsyncStudies(self)
        self.usage = AsyncUsageResource(self)
        self.account = AsyncAccountResource(self)
        self.billing = AsyncBilling(self)

    def with_options(self, **overrides: Any) -> AsyncClient:
        return AsyncClient(**self._copy_kwargs(overrides), http_client=self._http)

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def _request(self, spec: RequestSpec) -> httpx.Response:
        kwargs = self._request_kwargs(spec)
        attempt = 0
        while True:
            try:
                response = await self._http.request(spec.method, self._url(spec.path), **kwargs)
            except httpx.TransportError as exc:
                error: EmoscopeError = self._connection_error(exc)
                delay = self._retry_delay(spec, attempt, error, exc)
                if delay is None:
                    raise error from exc
            else:
                if response.is_success:
                    return response
                error = self._error_from_response(response)
                delay = self._retry_delay(spec, attempt, error)
                if delay is None:
                    raise error
            self._log_retry(spec, attempt, delay, error)
            await asyncio.sleep(delay)
            attempt += 1

    async def analyze(
        self,
        file: Any,
        *,
        detector: Optional[str] = None,
        min_face_size: Optional[int] = None,
        max_faces: Optional[int] = None,
        return_landmarks: Optional[bool] = None,
        return_mesh: Optional[bool] = None,
        fps: Optional[float] = None,
        micro_expressions: Union[bool, Mapping[str, Any], None] = None,
        extra_fields: Optional[Mapping[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
        on_progress: Optional[ProgressCallback] = None,
        job_timeout: Optional[float] = DEFAULT_JOB_TIMEOUT,
    ) -> AnalysisResultType:
        """See `Client.analyze`. Also takes file objects whose `read()` is a coroutine (e.g. aiofiles);
        `on_progress` may be a coroutine function."""
        if hasattr(file, "read") and not isinstance(file, (str, bytes, bytearray, memoryview)):
            content = file.read()
            if inspect.isawaitable(content):
                content = await content
            content, filename = _base._check_binary(content), _base._filename(getattr(file, "name", None))
        else:
            content, filename = _base.media_bytes(file)
        response = await self._request(
            _base.analyze_spec(
                content,
                filename,
                detector=detector,
                min_face_size=min_face_size,
                max_faces=max_faces,
                return_landmarks=return_landmarks,
                return_mesh=return_mesh,
                fps=fps,
                micro_expressions=micro_expressions,
                extra_fields=extra_fields,
                idempotency_key=idempotency_key,
                timeout=timeout,
            )
        )
        if response.status_code == 202:
            job = self._job(response)
            return (await self.jobs.wait(job, timeout=job_timeout, on_progress=on_progress)).result_or_raise()
        return self._analysis(response)

    async def sign_up(self, email: str, password: str, account_name: str) -> SignUpResult:
        response = await self._request(_base.sign_up_spec(email, password, account_name))
        return SignUpResult.from_dict(response.json())

    async def sign_in(self, email: str, password: str, key_name: Optional[str] = None) -> ApiKey:
        response = await self._request(_base.sign_in_spec(email, password, key_name))
        return ApiKey.from_dict(response.json()["api_key"])


class _AsyncResource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client


class AsyncKeys(_AsyncResource):
    async def create(self, name: str = "", scopes: Sequence[str] = ("analyze",)) -> ApiKey:
        response = await self._client._request(_base.keys_create_spec(name, scopes))
        return ApiKey.from_dict(response.json())

    async def list(self) -> List[ApiKey]:
        response = await self._client._request(RequestSpec("GET", "/v1/keys"))
        return [ApiKey.from_dict(k) for k in response.json()["data"]]

    async def revoke(self, key: Union[int, ApiKey]) -> None:
        await self._client._request(RequestSpec("DELETE", f"/v1/keys/{_base.key_id(key)}"))


class AsyncJobs(_AsyncResource):
    async def create(
        self,
        file: Any,
        *,
        webhook_url: Optional[str] = None,
        detector: Optional[str] = None,
        min_face_size: Optional[int] = None,
        max_faces: Optional[int] = None,
        return_landmarks: Optional[bool] = None,
        return_mesh: Optional[bool] = None,
        fps: Optional[float] = None,
        micro_expressions: Union[bool, Mapping[str, Any], None] = None,
        extra_fields: Optional[Mapping[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        timeout: Timeout = None,
    ) -> Job:
        content, filename = _base.media_bytes(file)
        response = await self._client._request(
            _base.analyze_spec(
                content,
                filename,
                detector=detector,
                min_face_size=min_face_size,
                max_faces=max_faces,
                return_landmarks=return_landmarks,
                return_mesh=return_mesh,
                fps=fps,
                micro_expressions=micro_expressions,
                extra_fields=extra_fields,
                idempotency_key=idempotency_key,
                timeout=timeout,
                run_async=True,
                webhook_url=webhook_url,
            )
        )
        return self._client._job(response)

    async def get(self, job: Union[str, Job]) -> Job:
        return self._client._job(await self._client._request(RequestSpec("GET", _base.job_path(job))))

    async def delete(self, job: Union[str, Job]) -> None:
        await self._client._request(RequestSpec("DELETE", _base.job_path(job)))

    async def wait(
        self,
        job: Union[str, Job],
        *,
        timeout: Optional[float] = DEFAULT_JOB_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_progress: Optional[Callable[[Job], Union[Any, Awaitable[Any]]]] = None,
    ) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay, seen = 0.1, None
        current = await self.get(job)
        while True:
            state = (current.status, current.progress)
            if on_progress is not None and state != seen:
                outcome = on_progress(current)
                if inspect.isawaitable(outcome):
                    await outcome
            seen = state
            if current.done:
                return current
            delay = _base.next_poll(delay, poll_interval)
            if deadline is not None and time.monotonic() + delay > deadline:
                raise _job_timeout_error(current, timeout)
            await asyncio.sleep(delay)
            current = await self.get(current)


class AsyncStudies(_AsyncResource):
    async def create(
        self,
        name: str,
        stimulus_duration_ms: float,
        *,
        stimulus: Optional[MediaInput] = None,
        max_sessions: Optional[int] = None,
        variables: Sequence[str] = (),
    ) -> Study:
        response = await self._client._request(
            _base.study_create_spec(name, stimulus_duration_ms, stimulus, max_sessions, variables)
        )
        return Study.from_dict(response.json())

    async def get(self, study: Union[str, Study]) -> Study:
        return Study.from_dict((await self._client._request(RequestSpec("GET", _base.study_path(study)))).json())

    async def rotate_participant_token(self, study: Union[str, Study]) -> Study:
        response = await self._client._request(RequestSpec("POST", _base.study_path(study, "/participant-token")))
        return Study.from_dict(response.json())

    async def report(
        self, study: Union[str, Study], *, bucket_ms: Optional[int] = None, segment: Optional[Mapping[str, str]] = None
    ) -> StudyReport:
        response = await self._client._request(_base.study_report_spec(study, bucket_ms, segment=segment))
        return StudyReport.from_dict(response.json())

    async def report_csv(
        self,
        study: Union[str, Study],
        *,
        bucket_ms: Optional[int] = None,
        table: str = "seconds",
        segment: Optional[Mapping[str, str]] = None,
    ) -> str:
        return (await self._client._request(_base.study_report_spec(study, bucket_ms, "text/csv", table, segment))).text

    async def report_pdf(
        self, study: Union[str, Study], *, bucket_ms: Optional[int] = None, segment: Optional[Mapping[str, str]] = None
    ) -> bytes:
        spec = _base.study_report_spec(study, bucket_ms, "application/pdf", segment=segment)
        return (await self._client._request(spec)).content

    async def create_report_link(
        self, study: Union[str, Study], *, expires_in_days: Optional[int] = None
    ) -> ReportLink:
        response = await self._client._request(_base.report_link_create_spec(study, expires_in_days))
        return ReportLink.from_dict(response.json())

    async def report_links(self, study: Union[str, Study]) -> List[ReportLink]:
        response = await self._client._request(RequestSpec("GET", _base.study_path(study, "/report-links")))
        return [ReportLink.from_dict(item) for item in response.json()["data"]]

    async def revoke_report_link(self, study: Union[str, Study], link: Union[str, ReportLink]) -> None:
        await self._client._request(RequestSpec("DELETE", _base.report_link_path(study, link)))

    async def compare(self, studies: Sequence[Union[str, Study]]) -> StudyComparison:
        response = await self._client._request(_base.study_compare_spec(studies))
        return StudyComparison.from_dict(response.json())

    async def delete(self, study: Union[str, Study]) -> None:
        await self._client._request(RequestSpec("DELETE", _base.study_path(study)))


class AsyncUsageResource(_AsyncResource):
    async def get(self, from_: Union[date, str, None] = None, to: Union[date, str, None] = None) -> Usage:
        return Usage.from_dict((await self._client._request(_base.usage_spec(from_, to))).json())


class AsyncAccountResource(_AsyncResource):
    async def get(self) -> Account:
        return Account.from_dict((await self._client._request(RequestSpec("GET", "/v1/account"))).json())

    async def delete_data(self) -> DataDeletion:
        return DataDeletion.from_dict((await self._client._request(RequestSpec("DELETE", "/v1/account/data"))).json())


class AsyncBilling(_AsyncResource):
    async def subscribe(self, payment_method: Optional[str] = None) -> Subscription:
        return Subscription.from_dict((await self._client._request(_base.subscribe_spec(payment_method))).json())

    async def portal_url(self, return_url: str) -> str:
        url: str = (await self._client._request(_base.portal_spec(return_url))).json()["url"]
        return url


# ---- module-level helpers --------------------------------------------------------------------


def sign_up(
    email: str, password: str, account_name: str, *, base_url: Optional[str] = None, **client_options: Any
) -> SignUpResult:
    """Create an account; returns its first admin key (`result.api_key.secret`, shown only here)."""
    with Client(base_url=base_url, **client_options) as client:
        return client.sign_up(email, password, account_name)


def sign_in(
    email: str, password: str, key_name: Optional[str] = None, *, base_url: Optional[str] = None, **client_options: Any
) -> ApiKey:
    """Exchange an owner's email and password for a new admin key (`key.secret`)."""
    with Client(base_url=base_url, **client_options) as client:
        return client.sign_in(email, password, key_name)
