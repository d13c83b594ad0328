"""What the sync and async clients share: configuration, request building, retry policy, errors."""

from __future__ import annotations

import email.utils
import json
import logging
import os
import platform
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import httpx

from ._exceptions import APIConnectionError, APITimeoutError, EmoscopeError, error_class
from ._models import ImageResult, Job, VideoResult, parse_analysis
from ._version import __version__

log = logging.getLogger("emoscope")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 120.0  # an analysis of a 60 s clip may take a while
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_RETRY_WAIT = 60.0
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0

#: Answers worth retrying. 409 only with code idempotency_in_progress (see `_retry_delay`).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Codes that will not change by waiting, even though their status is in RETRY_STATUSES.
PERMANENT_CODES = frozenset({"billing_not_configured"})

USER_AGENT = f"emoscope-python/{__version__} python/{platform.python_version()} httpx/{httpx.__version__}"

MediaInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]
Timeout = Union[float, httpx.Timeout, None]


@dataclass
class RequestSpec:
    method: str
    path: str
    params: Optional[Dict[str, str]] = None
    json: Optional[Any] = None
    data: Optional[Dict[str, str]] = None
    files: Optional[Dict[str, Tuple[str, bytes, str]]] = None
    #: Sent as `Idempotency-Key`; the same value on every retry of this call.
    idempotency_key: Optional[str] = None
    #: False for sign-up/sign-in, which take no API key.
    auth: bool = True
    #: "all": safe to repeat (GET, DELETE, POST with an Idempotency-Key). "unprocessed": repeat only
    #: when the server surely did nothing (could not connect, 429, 503 overloaded).
    retry: str = "all"
    timeout: Timeout = None
    headers: Dict[str, str] = field(default_factory=dict)


class BaseClient:
    def __init__(
        self,
        *,
        api_key: Optional[str],
        base_url: Optional[str],
        timeout: Timeout,
        max_retries: int,
        max_retry_wait: float,
        default_headers: Optional[Mapping[str, str]],
    ) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get("EMOSCOPE_API_KEY") or None
        self.base_url = (base_url or os.environ.get("EMOSCOPE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.default_headers = dict(default_headers or {})

    def _copy_kwargs(self, overrides: Mapping[str, Any]) -> Dict[str, Any]:
        unknown = set(overrides) - {
            "api_key",
            "base_url",
            "timeout",
            "max_retries",
            "max_retry_wait",
            "default_headers",
        }
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        current = {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "max_retry_wait": self.max_retry_wait,
            "default_headers": self.default_headers,
        }
        return {**current, **overrides}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, max_retries={self.max_retries})"

    # ---- requests ----------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _headers(self, spec: RequestSpec) -> Dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **self.default_headers, **spec.headers}
        if spec.auth and self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if spec.idempotency_key is not None:
            headers["Idempotency-Key"] = spec.idempotency_key
        return headers

    def _request_kwargs(self, spec: RequestSpec) -> Dict[str, Any]:
        kwargs: Dict[str, Any] = {
            "headers": self._headers(spec),
            "timeout": spec.timeout if spec.timeout is not None else self.timeout,
        }
        for name in ("params", "json", "data", "files"):
            value = getattr(spec, name)
            if value is not None:
                kwargs[name] = value
        return kwargs

    # ---- retries -----------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt))."""
        return random.uniform(0, min(MAX_BACKOFF, INITIAL_BACKOFF * 2**attempt))

    def _retry_delay(
        self, spec: RequestSpec, attempt: int, error: EmoscopeError, exc: Optional[BaseException] = None
    ) -> Optional[float]:
        """Seconds to wait before retrying, or None to raise `error` now."""
        if attempt >= self.max_retries:
            return None
        if exc is not None:  # no HTTP answer
            if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError)):
                return None
            if spec.retry != "all" and not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                return None  # the server may have acted on it: do not repeat a non-idempotent POST
            return min(self._backoff(attempt), self.max_retry_wait)
        status, code = error.status or 0, error.code
        if code in PERMANENT_CODES:
            return None
        if spec.retry == "all":
            retryable = status in RETRY_STATUSES or (
                status == 409 and code == "idempotency_in_progress" and spec.idempotency_key is not None
            )
        else:
            retryable = status == 429 or (status == 503 and code == "overloaded")
        if not retryable:
            return None
        if error.retry_after is not None and error.retry_after > 0:
            if error.retry_after > self.max_retry_wait:
                return None  # the caller would rather know now than sleep that long
            # Honour Retry-After, plus a little jitter so shed clients do not all return at once.
            delay = error.retry_after + random.uniform(0, min(1.0, 0.25 * error.retry_after))
            return min(delay, self.max_retry_wait)
        return min(self._backoff(attempt), self.max_retry_wait)

    def _log_retry(self, spec: RequestSpec, attempt: int, delay: float, error: EmoscopeError) -> None:
        log.info(
            "retrying %s %s in %.2f s (attempt %d of %d) after %s",
            spec.method,
            spec.path,
            delay,
            attempt + 1,
            self.max_retries,
            error.code or type(error).__name__,
        )

    # ---- answers -----------------------------------------------------------------------------

    @staticmethod
    def _connection_error(exc: httpx.HTTPError) -> APIConnectionError:
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"request timed out: {exc}" if str(exc) else "request timed out")
        return APIConnectionError(f"connection error: {exc}" if str(exc) else f"connection error: {type(exc).__name__}")

    @staticmethod
    def _error_from_response(response: httpx.Response) -> EmoscopeError:
        problem: Dict[str, Any] = {}
        try:
            body = response.json()
            if isinstance(body, dict):
                problem = body
        except ValueError:
            pass
        status = response.status_code
        code = problem.get("code")
        detail = problem.get("detail") or (None if problem else response.text[:500] or None)
        request_id = problem.get("request_id") or response.headers.get("X-Request-Id")
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        cls = error_class(status, code)
        message = f"{status} {code or response.reason_phrase}" + (f": {detail}" if detail else "")
        return cls(
            message,
            status=status,
            code=code,
            detail=detail,
            request_id=request_id,
            problem=problem,
            headers=response.headers,
            retry_after=retry_after,
        )

    @staticmethod
    def _replayed(response: httpx.Response) -> bool:
        return bool(response.headers.get("Idempotent-Replayed") == "true")

    @classmethod
    def _analysis(cls, response: httpx.Response) -> Union[ImageResult, VideoResult]:
        return parse_analysis(response.json(), replayed=cls._replayed(response))

    @classmethod
    def _job(cls, response: httpx.Response) -> Job:
        data = response.json()
        if not (isinstance(data, dict) and "id" in data and "status" in data):
            raise EmoscopeError(
                f"expected a job, got a {response.status_code} answer without one",
                status=response.status_code,
                request_id=response.headers.get("X-Request-Id"),
            )
        return Job.from_dict(data, replayed=cls._replayed(response))


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


# ---- request builders shared by both clients -------------------------------------------------


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return str(value)


def _filename(name: Any) -> str:
    if isinstance(name, (str, os.PathLike)):
        return os.path.basename(os.fspath(name)) or "upload"
    return "upload"


def media_bytes(file: Any) -> Tuple[bytes, str]:
    """(content, file name) from a path, bytes, or a binary file object. Read once into memory so
    that retries can send the same bytes again (the API accepts at most 50 MiB)."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as handle:
            return handle.read(), _filename(file)
    if isinstance(file, (bytes, bytearray, memoryview)):
        return bytes(file), "upload"
    read = getattr(file, "read", None)
    if read is None:
        raise TypeError(f"expected a path, bytes or a binary file object, not {type(file).__name__}")
    content = read()
    return _check_binary(content), _filename(getattr(file, "name", None))


def _check_binary(content: Any) -> bytes:
    if isinstance(content, str):
        raise TypeError("the file object returned text; open it in binary mode ('rb')")
    return bytes(content)


def analyze_spec(
    content: bytes,
    filename: str,
    *,
    detector: Optional[str],
    min_face_size: Optional[int],
    max_faces: Optional[int],
    return_landmarks: Optional[bool],
    return_mesh: Optional[bool],
    fps: Optional[float],
    micro_expressions: Union[bool, Mapping[str, Any], None],
    extra_fields: Optional[Mapping[str, Any]],
    idempotency_key: Optional[str],
    timeout: Timeout,
    run_async: bool = False,
    webhook_url: Optional[str] = None,
) -> RequestSpec:
    form: Dict[str, str] = {}
    if run_async or webhook_url is not None:
        form["async"] = "true"
    if webhook_url is not None:
        form["webhook_url"] = webhook_url
    options = {
        "detector": detector,
        "min_face_size": min_face_size,
        "max_faces": max_faces,
        "return_landmarks": return_landmarks,
        "return_mesh": return_mesh,
        "fps": fps,
    }
    for name, value in options.items():
        if value is not None:
            form[name] = _form_value(value)
    if micro_expressions is not None:
        micro = {"enabled": micro_expressions} if isinstance(micro_expressions, bool) else dict(micro_expressions)
        form["micro_expressions"] = json.dumps(micro)  # a nested object travels as JSON text
    for name, value in (extra_fields or {}).items():
        form[name] = _form_value(value)
    return RequestSpec(
        "POST",
        "/v1/analyze",
        data=form,
        files={"file": (filename, content, "application/octet-stream")},
        idempotency_key=idempotency_key or new_idempotency_key(),
        timeout=timeout,
    )


def keys_create_spec(name: str, scopes: Sequence[str]) -> RequestSpec:
    if isinstance(scopes, str):
        scopes = [scopes]
    # The service cannot replay a key creation (it would have to store the secret), so a create is
    # retried only when it surely did not happen.
    return RequestSpec("POST", "/v1/keys", json={"name": name, "scopes": list(scopes)}, retry="unprocessed")


def key_id(key: Any) -> int:
    return int(getattr(key, "id", key))


def job_path(job: Any) -> str:
    job_id = str(getattr(job, "id", job))
    if not job_id or "/" in job_id:
        raise ValueError(f"not a job id: {job_id!r}")
    return f"/v1/jobs/{job_id}"


def next_poll(delay: float, poll_interval: float) -> float:
    """Poll soon at first (short jobs finish in a second), then every `poll_interval` seconds."""
    return min(poll_interval, delay * 2)


def usage_spec(from_: Union[date, str, None], to: Union[date, str, None]) -> RequestSpec:
    params = {}
    if from_ is not None:
        params["from"] = from_.isoformat() if isinstance(from_, date) else str(from_)
    if to is not None:
        params["to"] = to.isoformat() if isinstance(to, date) else str(to)
    return RequestSpec("GET", "/v1/usage", params=params)


def subscribe_spec(payment_method: Optional[str]) -> RequestSpec:
    # Subscribing is idempotent on the server (once per live subscription): safe to retry.
    body = {"payment_method": payment_method} if payment_method else {}
    return RequestSpec("POST", "/v1/billing/subscription", json=body)


def portal_spec(return_url: str) -> RequestSpec:
    return RequestSpec("POST", "/v1/billing/portal", json={"return_url": return_url})


def sign_up_spec(email: str, password: str, account_name: str) -> RequestSpec:
    return RequestSpec(
        "POST",
        "/v1/signup",
        json={"email": email, "password": password, "account_name": account_name},
        auth=False,
        retry="unprocessed",
    )


def sign_in_spec(email: str, password: str, key_name: Optional[str]) -> RequestSpec:
    body = {"email": email, "password": password}
    if key_name is not None:
        body["key_name"] = key_name
    return RequestSpec("POST", "/v1/signin", json=body, auth=False, retry="unprocessed")


def study_path(study: Any, suffix: str = "") -> str:
    study_id = str(getattr(study, "id", study))
    if not study_id or "/" in study_id:
        raise ValueError(f"not a study id: {study_id!r}")
    return f"/v1/studies/{study_id}{suffix}"


def study_create_spec(
    name: str,
    stimulus_duration_ms: float,
    stimulus: Any,
    max_sessions: Optional[int] = None,
    variables: Sequence[str] = (),
) -> RequestSpec:
    # A study holds a one-time participant token, so like a key it is not replayed: retried only
    # when the server surely did nothing.
    fields: Dict[str, Any] = {"name": name, "stimulus_duration_ms": stimulus_duration_ms}
    if max_sessions is not None:
        fields["max_sessions"] = max_sessions
    if variables:
        fields["variables"] = list(variables)
    if stimulus is None:
        return RequestSpec("POST", "/v1/studies", json=fields, retry="unprocessed")
    content, filename = media_bytes(stimulus)
    return RequestSpec(
        "POST",
        "/v1/studies",
        data={k: _form_value(v) for k, v in fields.items()},
        files={"stimulus": (filename, content, "application/octet-stream")},
        retry="unprocessed",
    )


def report_link_create_spec(study: Any, expires_in_days: Optional[int]) -> RequestSpec:
    body = {"expires_in_days": expires_in_days} if expires_in_days is not None else {}
    # A new link each time, like a key: retried only when the server surely did nothing.
    return RequestSpec("POST", study_path(study, "/report-links"), json=body, retry="unprocessed")


def report_link_path(study: Any, link: Any) -> str:
    link_id = str(getattr(link, "id", link))
    if not link_id or "/" in link_id:
        raise ValueError(f"not a report link id: {link_id!r}")
    return study_path(study, f"/report-links/{link_id}")


def study_compare_spec(studies: Sequence[Any]) -> RequestSpec:
    ids = [str(getattr(study, "id", study)) for study in studies]
    if any(not i or "," in i for i in ids):
        raise ValueError(f"not study ids: {ids!r}")
    return RequestSpec("GET", "/v1/studies/compare", params={"ids": ",".join(ids)})


def study_report_spec(
    study: Any,
    bucket_ms: Optional[int],
    accept: Optional[str] = None,
    table: str = "seconds",
    segment: Optional[Mapping[str, str]] = None,
) -> RequestSpec:
    """The report request; `accept` ("text/csv", "application/pdf") asks for that format instead of JSON."""
    params = {"bucket_ms": str(bucket_ms)} if bucket_ms is not None else {}
    if table != "seconds":
        params["table"] = table
    params.update({f"segment.{key}": value for key, value in (segment or {}).items()})
    headers = {"Accept": accept} if accept else {}
    return RequestSpec("GET", study_path(study, "/report"), params=params or None, headers=headers)
