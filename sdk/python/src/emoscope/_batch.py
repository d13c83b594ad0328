"""Many files analysed as one batch: which files, an Idempotency-Key each, a few at a time, and
paced to the rate the API states once it answers 429. Used by `emoscope analyze` (cli.py)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import httpx

from ._base import parse_retry_after
from ._client import Client
from ._exceptions import AuthenticationError, EmoscopeError, PermissionDeniedError, QuotaExceededError
from ._models import ImageResult, VideoResult

#: What a folder contributes; files named one by one are sent whatever their name (the API reads the bytes).
MEDIA_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".mp4", ".mov", ".webm"})
#: Requests in flight at once by default: within the analysis slots of one worker of a default
#: deployment (2), so a batch does not meet 503 `overloaded` on its own; raise it for larger ones.
DEFAULT_CONCURRENCY = 2
#: Refusals of the key or the account, not of a file: every file after would meet them too.
ENDS_BATCH = (AuthenticationError, PermissionDeniedError, QuotaExceededError)


class UsageError(Exception):
    """A path that names nothing: the batch does not start (exit status 2)."""


def media_files(paths: Sequence[str], recursive: bool = False) -> List[str]:
    """The files to analyse, in the order given: a file as is; a folder's media files (by suffix,
    hidden ones left out, in name order; its subfolders too when `recursive`); a glob pattern's
    matches (for shells that do not expand it, or a quoted `**`). Each file once."""
    found: List[str] = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
        elif os.path.isdir(path):
            found.extend(_folder(path, recursive))
        elif any(char in path for char in "*?["):
            matches = sorted(m for m in glob.glob(path, recursive=True) if os.path.isfile(m))
            if not matches:
                raise UsageError(f"no file matches {path}")
            found.extend(matches)
        else:
            raise UsageError(f"no such file or folder: {path}")
    return list(dict.fromkeys(found))


def _folder(path: str, recursive: bool) -> List[str]:
    files: List[str] = []
    for root, folders, names in os.walk(path):
        folders[:] = sorted(f for f in folders if not f.startswith(".")) if recursive else []
        files.extend(
            os.path.join(root, name)
            for name in sorted(names)
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in MEDIA_SUFFIXES
        )
    return files


def is_batch(paths: Sequence[str]) -> bool:
    """Several paths, a folder or a pattern make a batch; one file alone is a single analysis."""
    return len(paths) != 1 or not os.path.isfile(paths[0])


def batch_key(secret: str, path: str, content: bytes, options: Mapping[str, Any]) -> str:
    """An Idempotency-Key from the batch's `secret`, the file (its absolute path and its bytes) and
    the options (every field the request sends): the same command run again replays what was
    analysed (unbilled); an edited file or other options make another key rather than a 422
    `idempotency_key_reused`; two copies of a file in one batch are two files, not a 409."""
    digest = hashlib.sha256(json.dumps([secret, os.path.abspath(path), options], sort_keys=True).encode())
    digest.update(content)
    return f"batch-{digest.hexdigest()}"


@dataclass(frozen=True)
class Outcome:
    """One file's end: its result, or the error that stopped it (the batch goes on)."""

    path: str
    idempotency_key: str
    result: Optional[Union[ImageResult, VideoResult]] = None
    error: Optional[EmoscopeError] = None

    @property
    def ok(self) -> bool:
        return self.error is None


class RatePacer:
    """httpx event hooks shared by a batch's threads. Until the API answers 429 nothing waits (the
    bucket's burst is there to be used). From then on requests leave evenly spaced at no more than
    the rate the 429 states, so the threads stop spending their retries on 429s together. Any
    `Retry-After` (429, 503 `overloaded`) holds every request of the batch until it has passed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._interval: Optional[float] = None

    def hooks(self) -> Dict[str, List[Callable[..., None]]]:
        return {"request": [self.before_request], "response": [self.after_response]}

    def before_request(self, request: httpx.Request) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next_at)
            if self._interval is not None:
                self._next_at = start + self._interval
        if start > now:
            self._sleep(start - now)

    def after_response(self, response: httpx.Response) -> None:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            return
        with self._lock:
            self._next_at = max(self._next_at, self._clock() + retry_after)
            if response.status_code == 429:
                self._interval = _interval(response.headers, retry_after)


def _interval(headers: httpx.Headers, retry_after: float) -> float:
    """Seconds per request: a refused request's bucket holds under one token, so refilling it
    (`X-RateLimit-Reset` s) adds more than `X-RateLimit-Limit` - 1 tokens, at the plan's rate."""
    try:
        burst, refill_s = int(headers["X-RateLimit-Limit"]), float(headers["X-RateLimit-Reset"])
    except (KeyError, ValueError):
        burst, refill_s = 0, 0.0
    return refill_s / (burst - 1) if burst > 1 and refill_s > 0 else max(retry_after, 0.1)


def run(
    client: Client,
    paths: Sequence[str],
    analyse: Callable[[Client, str, str], Union[ImageResult, VideoResult]],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    key_secret: Optional[str] = None,
    options: Optional[Mapping[str, Any]] = None,
    on_done: Callable[[Outcome], None] = lambda outcome: None,
) -> List[Future[Outcome]]:
    """Start analysing `paths`, `concurrency` at a time, with `analyse(client, path, idempotency_key)`;
    returns the outcomes' futures in the order of `paths` (`on_done` is called as each ends). An
    error of one file (refused by the API, unreadable) is its outcome and never stops the others;
    one of `ENDS_BATCH` skips the files not yet sent."""
    ended: List[EmoscopeError] = []

    def one(path: str) -> Outcome:
        key = str(uuid.uuid4())
        try:
            if ended:
                raise EmoscopeError(f"skipped: an earlier file was refused ({ended[0].code or ended[0].status})")
            if key_secret is not None:
                with open(path, "rb") as handle:
                    key = batch_key(key_secret, path, handle.read(), options or {})
            outcome = Outcome(path, key, result=analyse(client, path, key))
        except EmoscopeError as exc:
            if isinstance(exc, ENDS_BATCH):
                ended.append(exc)
            outcome = Outcome(path, key, error=exc)
        except OSError as exc:
            outcome = Outcome(path, key, error=EmoscopeError(f"cannot read the file: {exc.strerror or exc}"))
        on_done(outcome)
        return outcome

    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="emoscope-batch")
    try:
        return [executor.submit(one, path) for path in paths]
    finally:
        executor.shutdown(wait=False)  # the submitted work goes on; nothing more is taken
