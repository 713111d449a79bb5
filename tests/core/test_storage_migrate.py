# ruff: noqa: F811 - pytest fixtures imported from tests/objectstore.py and tests/evals/conftest.py
"""`manage.py storage_migrate --to s3://…`: copies MEDIA_ROOT into a bucket, verified, resumable."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from evalsite.core import files
from pipelines.hashing import sha256_bytes
from tests.objectstore import BUCKET, keys, s3_bucket, s3_storages  # noqa: F401 - fixtures

pytestmark = pytest.mark.no_services


@pytest.fixture
def media(tmp_path, settings, monkeypatch):
    """A filesystem store with two set files, a run file and leftovers of work in progress."""
    root = tmp_path / "media"
    sha = sha256_bytes(b"photo")
    stored = {
        f"cas/{sha[:2]}/{sha[2:4]}/{sha}.jpg": b"photo",
        "models/fam/1.0.0/model.onnx": b"onnx model",
        "runs/4/alpha/a.png": b"alpha",
    }
    for name, data in stored.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / ".staging" / "abc").mkdir(parents=True)
    (root / ".staging" / "abc" / "half.png").write_bytes(b"staged")
    (root / "runs" / "4" / "alpha" / ".b.png.123.tmp").write_bytes(b"half")
    settings.MEDIA_ROOT = root
    settings.S3_ENDPOINT_URL = None
    settings.S3_REGION = "us-east-1"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return stored


def migrate(url: str) -> str:
    out = io.StringIO()
    call_command("storage_migrate", "--to", url, stdout=out)
    return out.getvalue()


def test_it_copies_every_stored_file_with_its_sha256_and_skips_work_in_progress(
    media,
    s3_bucket,
):
    said = migrate(f"s3://{BUCKET}/prod")
    assert keys(s3_bucket) == sorted(f"prod/{name}" for name in media)
    for name, data in media.items():
        head = s3_bucket.head_object(Bucket=BUCKET, Key=f"prod/{name}")
        assert head["Metadata"]["sha256"] == sha256_bytes(data)
    assert "[3/3]" in said and "3 copied and verified, 0 already there" in said


def test_a_second_run_copies_only_what_is_missing_or_different(
    media,
    s3_bucket,
    settings,
):
    migrate(f"s3://{BUCKET}")
    # a half-finished earlier copy: one object missing, one with other bytes
    s3_bucket.delete_object(Bucket=BUCKET, Key="runs/4/alpha/a.png")
    s3_bucket.put_object(
        Bucket=BUCKET, Key="models/fam/1.0.0/model.onnx", Body=b"garbage",
        Metadata={"sha256": sha256_bytes(b"garbage")},
    )  # fmt: skip
    said = migrate(f"s3://{BUCKET}")
    assert "2 copied and verified, 1 already there" in said
    body = s3_bucket.get_object(Bucket=BUCKET, Key="models/fam/1.0.0/model.onnx")["Body"].read()
    assert body == b"onnx model"


def test_after_the_switch_the_platform_reads_the_same_names_from_the_bucket(
    media,
    s3_bucket,
    settings,
    tmp_path,
):
    from evalsite.datasets.storage import item_file

    migrate(f"s3://{BUCKET}/media")
    settings.STORAGES = s3_storages(f"s3://{BUCKET}/media")
    settings.WORKER_CACHE_DIR = tmp_path / "cache"
    files._cache.cache_clear()
    cas = next(name for name in media if name.startswith("cas/"))
    assert item_file(cas).read_bytes() == b"photo"
    assert files.read_bytes("runs/4/alpha/a.png") == b"alpha"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("file://", "--to must be an s3://BUCKET[/PREFIX] URL"),
        ("s3://No_Such", "--to must name a bucket"),
        ("http://bucket", "--to has an unsupported scheme 'http'"),
        ("s3://missing-bucket", "bucket 'missing-bucket' of s3://missing-bucket does not exist"),
    ],
)
def test_a_bad_url_or_bucket_is_refused_with_a_clear_message(
    media,
    s3_bucket,
    url,
    says,
):
    with pytest.raises(CommandError) as caught:
        migrate(url)
    assert says in str(caught.value)
    assert keys(s3_bucket) == []
