# ruff: noqa: F811 - pytest fixtures imported from tests/objectstore.py and tests/evals/conftest.py
"""The storage seam (`evalsite.core.files`) on the filesystem and on an S3 bucket (moto)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from evalsite.core import faults, files
from evalsite.env import storage_url, storages_from_url
from pipelines.filecache import CorruptObject
from pipelines.hashing import sha256_bytes
from tests.objectstore import BUCKET, keys, s3_bucket, s3_store  # noqa: F401 - fixtures

pytestmark = pytest.mark.no_services


# --- settings ---------------------------------------------------------------------------------


def test_file_url_is_the_filesystem_storage_following_media_root():
    config = storages_from_url(
        "STORAGE_URL", "file://", endpoint_url=None, region=None, access_key=None, secret_key_=None
    )
    assert config == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def test_s3_url_configures_bucket_prefix_endpoint_and_no_acls():
    config = storages_from_url(
        "STORAGE_URL", "s3://evalsite-media/team/a", endpoint_url="http://127.0.0.1:9000",
        region="eu-central-1", access_key="AK", secret_key_="SK",
    )  # fmt: skip
    options = config["OPTIONS"]
    assert config["BACKEND"] == "storages.backends.s3.S3Storage"
    assert options["bucket_name"] == "evalsite-media" and options["location"] == "team/a"
    assert options["endpoint_url"] == "http://127.0.0.1:9000"
    assert options["region_name"] == "eu-central-1"
    assert options["default_acl"] is None and options["file_overwrite"] is True
    assert (options["access_key"], options["secret_key"]) == ("AK", "SK")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://x", "unsupported scheme 'ftp'"),
        ("s3://", "must name a bucket"),
        ("s3://Upper_Case", "must name a bucket"),
        ("s3://ok-bucket/../up", "invalid prefix"),
        ("s3://ok-bucket/a//b", "invalid prefix"),
        ("file:///srv/media", "takes no path"),
    ],
)
def test_bad_storage_urls_are_refused_naming_the_variable(url, says):
    with pytest.raises(ImproperlyConfigured) as caught:
        storage_url("STORAGE_URL", url)
    assert "STORAGE_URL" in str(caught.value) and says in str(caught.value)


def test_half_a_credential_pair_is_refused():
    with pytest.raises(ImproperlyConfigured, match="AWS_SECRET_ACCESS_KEY"):
        storages_from_url(
            "STORAGE_URL", "s3://bucket", endpoint_url=None, region=None, access_key="AK",
            secret_key_=None,
        )  # fmt: skip


# --- the filesystem store: today's layout, no copies -----------------------------------------


def test_filesystem_store_writes_under_media_root_and_local_path_is_the_file_itself(tmp_path):
    settings_media = Path(settings.MEDIA_ROOT)
    name = f"runs/{tmp_path.name}/alpha/x.png"
    assert files.is_local()
    files.save_bytes(name, b"png bytes")
    assert (settings_media / name).read_bytes() == b"png bytes"
    assert files.local_path(name) == settings_media / name
    assert files.read_bytes(name) == b"png bytes" and files.exists(name)
    assert files.delete_prefix(f"runs/{tmp_path.name}")
    assert not files.exists(name)


def test_filesystem_save_same_is_a_hard_link_replacing_what_was_there(tmp_path):
    """An image whose gate changed nothing: its ungated alpha is the gated file's bytes, kept
    once on disk, and the `alpha_ungated/` folder stays complete for `pipelines.metrics`."""
    media = Path(settings.MEDIA_ROOT)
    run = f"runs/{tmp_path.name}"
    gated, ungated = f"{run}/alpha/x.png", f"{run}/alpha_ungated/x.png"
    files.save_bytes(ungated, b"an earlier attempt's different bytes")
    files.save_bytes(gated, b"png bytes")
    assert files.save_same(ungated, gated, b"png bytes") == ungated
    assert (media / ungated).read_bytes() == b"png bytes"
    assert (media / ungated).stat().st_ino == (media / gated).stat().st_ino
    assert not [p for p in (media / ungated).parent.iterdir() if p.name.endswith(".tmp")]
    files.save_bytes(gated, b"a retry's bytes")  # a new file: the link keeps the old bytes
    assert (media / ungated).read_bytes() == b"png bytes"


def test_filesystem_save_same_writes_the_bytes_where_links_fail(tmp_path, monkeypatch):
    import os

    def no_links(*_):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    run = f"runs/{tmp_path.name}"
    gated, ungated = f"{run}/alpha/y.png", f"{run}/alpha_ungated/y.png"
    files.save_bytes(gated, b"png bytes")
    assert files.save_same(ungated, gated, b"png bytes") == ungated
    assert files.read_bytes(ungated) == b"png bytes"
    assert (Path(settings.MEDIA_ROOT) / ungated).stat().st_nlink == 1


# --- a bucket ---------------------------------------------------------------------------------


def test_bucket_store_round_trip_with_sha256_metadata(s3_store):
    name = "runs/7/alpha/item.png"
    files.save_bytes(name, b"alpha")
    assert keys(s3_store) == ["media/runs/7/alpha/item.png"]  # under the URL's prefix
    head = s3_store.head_object(Bucket=BUCKET, Key="media/" + name)
    assert head["Metadata"]["sha256"] == sha256_bytes(b"alpha")
    assert head["ContentType"] == "image/png"
    assert files.stored_sha256(name) == sha256_bytes(b"alpha")
    assert files.read_bytes(name) == b"alpha" and files.exists(name)
    before = files.fingerprint(name)
    files.save_bytes(name, b"alpha, rewritten")  # a retried chunk overwrites the same key
    assert files.fingerprint(name) != before
    assert files.local_path(name).read_bytes() == b"alpha, rewritten"  # never a stale copy
    # what a worker writes does not take room in its cache (set photos are what it reads again)
    held = files.worker_cache().usage()
    files.save_bytes("runs/7/alpha/fresh.png", b"fresh")
    assert files.worker_cache().usage() == held
    assert files.local_path("runs/7/alpha/fresh.png").read_bytes() == b"fresh"
    assert files.worker_cache().usage() == (held[0] + len(b"fresh"), held[1] + 1)
    s3_store.put_object(Bucket=BUCKET, Key="media/" + name, Body=b"other machine's bytes")
    assert files.local_path(name).read_bytes() == b"other machine's bytes"  # ETag changed
    assert not Path(settings.MEDIA_ROOT).exists()  # nothing went to the local disk


def test_threads_share_one_bucket_client_and_a_new_process_makes_its_own(s3_store, monkeypatch):
    """Making a client costs ~190 ms of CPU: a chunk's writer threads, new each chunk, must
    reuse the process's client (django-storages keeps one per thread); a forked child, whose
    pid differs, must not share its parent's connection pool."""
    import os
    import threading

    st = files.storage()
    mine = files._s3_client(st)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(files._s3_client(files.storage())))
    thread.start()
    thread.join()
    assert seen == [mine]
    files.save_bytes("runs/1/alpha/a.png", b"a")  # and writes go through it
    assert files.read_bytes("runs/1/alpha/a.png") == b"a"
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)
    assert files._s3_client(st) is not mine


def test_bucket_save_same_stores_nothing_and_names_the_existing_object(s3_store):
    files.save_bytes("runs/8/alpha/x.png", b"png bytes")
    assert files.save_same("runs/8/alpha_ungated/x.png", "runs/8/alpha/x.png", b"png bytes") == (
        "runs/8/alpha/x.png"
    )
    assert keys(s3_store) == ["media/runs/8/alpha/x.png"]


def test_clients_after_the_first_reuse_the_storage_session_across_a_fork(s3_store, monkeypatch):
    """`warm_up` runs in a worker's main process before it forks its pool: a pool process then
    makes its client from the session its parent loaded (the service model parsed once)."""
    import os

    st = files.storage()
    files.warm_up()
    session = st._evalsite_session
    made = []
    monkeypatch.setattr(type(st), "_create_session", lambda self: made.append(self))
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)  # as in a forked child
    client = files._s3_client(st)
    assert made == [] and st._evalsite_session is session
    files.save_bytes("runs/9/alpha/z.png", b"z")
    assert files.read_bytes("runs/9/alpha/z.png") == b"z" and files._s3_client(st) is client


def test_a_worker_warms_the_storage_client_before_forking_its_pool(monkeypatch):
    from celery import Celery
    from celery.signals import worker_init

    import evalsite.celery  # noqa: F401 - connects the receiver

    calls = []
    monkeypatch.setattr(files, "warm_up", lambda: calls.append(1))

    # Sent as another app's worker would be: Celery's Django fix-up then leaves it alone.
    class AnotherAppsWorker:
        app = Celery("another-app")

    worker_init.send(sender=AnotherAppsWorker())
    assert calls == [1]


def test_bucket_files_are_fetched_once_into_the_worker_cache_and_verified(s3_store):
    data = b"photo"
    sha = sha256_bytes(data)
    name = f"cas/{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    s3_store.put_object(Bucket=BUCKET, Key="media/" + name, Body=data)  # another machine's
    first = files.local_path(name, sha256=sha)
    assert first.read_bytes() == data and first.suffix == ".jpg"
    assert str(first).startswith(str(settings.WORKER_CACHE_DIR))
    s3_store.delete_object(Bucket=BUCKET, Key="media/" + name)
    assert files.local_path(name, sha256=sha) == first  # served from the cache, no fetch
    assert files.worker_cache().usage() == (len(data), 1)


def test_a_corrupt_object_fails_naming_the_file_and_hashes(s3_store):
    sha = sha256_bytes(b"the real bytes")
    name = f"cas/{sha[:2]}/{sha[2:4]}/{sha}.png"
    s3_store.put_object(Bucket=BUCKET, Key="media/" + name, Body=b"flipped bits")
    with pytest.raises(CorruptObject) as caught:
        files.local_path(name, sha256=sha)
    assert name in str(caught.value) and sha in str(caught.value)
    assert files.worker_cache().usage() == (0, 0)


def test_a_missing_object_is_file_not_found_naming_it(s3_store):
    with pytest.raises(FileNotFoundError, match=r"cas/00/00/gone\.png"):
        files.local_path("cas/00/00/gone.png", sha256="0" * 64)
    with pytest.raises(FileNotFoundError, match=r"runs/1/alpha/gone\.png"):
        files.open_read("runs/1/alpha/gone.png")
    assert not files.exists("runs/1/alpha/gone.png")
    files.delete("runs/1/alpha/gone.png")  # deleting nothing is fine


def test_save_file_and_delete_prefix_in_a_bucket(s3_store, tmp_path):
    source = tmp_path / "model.onnx"
    source.write_bytes(b"onnx")
    files.save_file("models/m/1/model.onnx", source)
    assert source.exists()  # copied, not moved
    files.save_file("runs/3/imported/a.png", source, move=True)
    assert not source.exists()
    assert files.stored_sha256("runs/3/imported/a.png") == sha256_bytes(b"onnx")
    assert files.delete_prefix("runs/3")
    assert keys(s3_store) == ["media/models/m/1/model.onnx"]
    assert not files.delete_prefix("runs/3")


# --- faults: storage unreachable is the infrastructure's, a missing object the item's ---------


def _client_error(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        _client_error(503, "SlowDown"),
        _client_error(500, "InternalError"),
    ],
)
def test_object_storage_outages_are_storage_faults(exc):
    assert faults.is_object_storage_fault(exc)
    assert faults.infrastructure_fault(exc) == "storage"
    wrapped = RuntimeError("while reading the photo")
    wrapped.__cause__ = exc
    assert faults.infrastructure_fault(wrapped) == "storage"
    assert "object storage unreachable" in faults.storage_fault_text(exc, "w1", "detail")


@pytest.mark.parametrize(
    "exc",
    [
        _client_error(404, "NoSuchKey"),
        _client_error(403, "AccessDenied"),
        CorruptObject("cas/x.png", "a" * 64, "b" * 64),
        FileNotFoundError("stored file cas/x.png is missing"),
        ValueError("bad png"),
    ],
)
def test_missing_corrupt_or_refused_objects_are_not_infrastructure(exc):
    assert faults.infrastructure_fault(exc) is None


def test_read_through_a_stream_decodes_like_a_path(tmp_path):
    from PIL import Image

    from pipelines.metrics.io import read_gray8

    buf = io.BytesIO()
    Image.new("L", (5, 3), 200).save(buf, format="PNG")
    path = tmp_path / "a.png"
    path.write_bytes(buf.getvalue())
    assert (read_gray8(io.BytesIO(buf.getvalue())) == read_gray8(path)).all()


# --- what a worker reports: backend, reachability, cache use ----------------------------------


def test_the_probe_reports_a_reachable_bucket_and_the_cache_use(s3_store, settings):
    files.save_bytes("cas/aa/bb/x.png", b"x")
    files.local_path("cas/aa/bb/x.png")
    probe = files.storage_probe()
    assert probe["backend"] == "s3" and probe["reachable"] is True
    assert probe["cache_files"] == 1 and probe["cache_bytes"] == 1
    assert probe["cache_limit_bytes"] == settings.WORKER_CACHE_MAX_MB * 2**20


def test_the_probe_reports_an_unreachable_bucket_quickly(settings, tmp_path):
    import time

    from tests.objectstore import s3_storages

    settings.STORAGES = s3_storages()
    settings.STORAGES["default"]["OPTIONS"]["endpoint_url"] = "http://127.0.0.1:9"  # discard port
    settings.WORKER_CACHE_DIR = tmp_path / "cache"
    began = time.monotonic()
    probe = files.storage_probe()
    assert probe["reachable"] is False and "EndpointConnectionError" in probe["error"]
    assert time.monotonic() - began < 2 * files.PROBE_TIMEOUT_SECONDS + 1


def test_the_probe_on_the_filesystem_checks_media_root_is_writable(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "not-yet" / "media"
    probe = files.storage_probe()
    assert probe["backend"] == "file" and probe["reachable"] is True
