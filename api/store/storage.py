"""Object storage for job media and results: S3 (boto3) when S3_BUCKET is set, else a local folder."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


@runtime_checkable
class Storage(Protocol):
    """Objects by key: LocalStorage, S3Storage."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...  # FileNotFoundError when there is no such object

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> Iterator[tuple[str, datetime]]: ...


@contextmanager
def undone_on_error(storage: Storage):
    """Yields a `put(key, data)` whose objects are deleted again if the block fails, including at the
    commit of a transaction opened inside the block: no object outlives a row that was never written.
    (A process killed in between still leaves one; the orphan sweep removes it.)"""
    written: list[str] = []

    def put(key: str, data: bytes) -> None:
        written.append(key)
        storage.put(key, data)

    try:
        yield put
    except BaseException:
        for key in written:
            try:
                storage.delete(key)
            except Exception:  # the original error matters more; the orphan sweep retries
                log.exception("could not delete an object after a failed transaction")
        raise


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"storage key escapes the storage folder: {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".partial")
        staging.write_bytes(data)
        staging.replace(path)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        """(key, last modified) of every object whose key starts with `prefix` (a folder, e.g. "media/")."""
        folder = self.root / prefix
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                yield (path.relative_to(self.root).as_posix(), datetime.fromtimestamp(path.stat().st_mtime, UTC))


class S3Storage:
    """Every object is written encrypted at rest (SSE); the bucket's lifecycle rule is the backstop."""

    def __init__(self, bucket: str, endpoint_url: str | None = None, kms_key_id: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}),
        )
        self.encryption = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
            if kms_key_id
            else {"ServerSideEncryption": "AES256"}
        )

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **self.encryption)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], item["LastModified"]
