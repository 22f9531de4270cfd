"""Durable file storage for what residents send: a folder under the instance by default, or an
S3-compatible bucket (MEDIA_S3_BUCKET; MEDIA_S3_ENDPOINT for MinIO, Ceph, OSS/COS gateways) through boto3.

Keys are content addresses ("2026/12/<sha256>.jpg"), so storing the same file twice stores it once and
a retried upload is harmless.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from flask import current_app


class Storage(Protocol):
    name: str

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...


class LocalStorage:
    """Files under one folder, written atomically (a reader never sees half a file)."""

    name = "local"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key outside the media folder: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()


class S3Storage:
    """One bucket of an S3-compatible service; credentials come from boto3's usual sources (AWS_*)."""

    name = "s3"

    def __init__(self, bucket: str, endpoint_url: str | None = None, region: str | None = None, timeout: float = 10):
        import boto3  # here: only deployments that use a bucket pay for importing boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2}),
        )

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


def media_storage(kind: str | None = None) -> Storage:
    """The configured store; `kind` ("local" | "s3") picks the one a stored file names."""
    config = current_app.config
    bucket = config.get("MEDIA_S3_BUCKET")
    if kind == "s3" or (kind is None and bucket):
        return S3Storage(bucket, config.get("MEDIA_S3_ENDPOINT"), config.get("MEDIA_S3_REGION"))
    return LocalStorage(config.get("MEDIA_DIR") or Path(current_app.instance_path) / "media")
