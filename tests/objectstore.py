"""Object storage for tests, in-process: moto's S3 (`mock_aws`) as the default storage.

The real-server runs (moto's standalone server over HTTP, a worker without the web's disk) are in
the end-to-end tests; these unit tests need only the S3 protocol's behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalsite.env import storages_from_url

BUCKET = "evalsite-test"


def s3_storages(url: str = f"s3://{BUCKET}/media") -> dict[str, Any]:
    default = storages_from_url(
        "STORAGE_URL", url, endpoint_url=None, region="us-east-1",
        access_key="testing", secret_key_="testing",
    )  # fmt: skip
    return {
        "default": default,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An empty in-process S3 bucket (moto); yields a boto3 client."""
    import boto3
    from moto import mock_aws

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )  # fmt: skip
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def s3_store(s3_bucket: Any, settings: Any, tmp_path: Path) -> Iterator[Any]:
    """The default storage switched to the moto bucket (prefix `media`), a fresh worker cache and
    an empty MEDIA_ROOT that nothing may write to; yields the boto3 client."""
    from evalsite.core import files

    settings.STORAGES = s3_storages()
    settings.WORKER_CACHE_DIR = tmp_path / "worker-cache"
    settings.MEDIA_ROOT = tmp_path / "media-unused"
    settings.TEMP_ROOT = tmp_path / "tmp"
    files._cache.cache_clear()
    yield s3_bucket
    files._cache.cache_clear()


def keys(client: Any, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", ()))
