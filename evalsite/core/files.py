"""Every stored file is written and read here, through Django's default storage (`STORAGE_URL`).

Two backends: the filesystem under MEDIA_ROOT (the embedded default: names are paths relative to
it, the layout unchanged) and an S3-protocol bucket (django-storages + boto3), which lets workers
on other machines share no disk. Names are content-addressed (`cas/aa/bb/<sha256><ext>`) or
id-addressed (`runs/<id>/…`, `models/<family>/<version>/…`), never a user's file name, so two
workers writing the same name write the same bytes and a retried write overwrites in place.

Reading: `local_path` gives a path a library can open (the file itself on the filesystem; with a
bucket, a copy in this worker's cache, `pipelines.filecache`, verified by its sha256 when the
caller knows it); `open_read` / `read_bytes` stream without a local copy (pages, one-off reads).
Writing: `save_bytes` / `save_file` are atomic on the filesystem (temporary name, then rename),
and store each object's sha256 in its metadata in a bucket (`storage_migrate` resumes by it).
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages

from pipelines.filecache import CorruptObject, FileCache
from pipelines.hashing import sha256_bytes, sha256_file

#: Object metadata key holding the sha256 of an object's bytes (S3 stores it as x-amz-meta-sha256).
SHA256_META = "sha256"

__all__ = [
    "CorruptObject",
    "delete",
    "delete_prefix",
    "exists",
    "fingerprint",
    "is_local",
    "local_path",
    "open_read",
    "read_bytes",
    "save_bytes",
    "save_file",
    "save_same",
    "storage",
    "storage_probe",
    "stored_sha256",
    "upload",
    "warm_up",
    "worker_cache",
]


def storage() -> Storage:
    """The configured default storage (`STORAGES["default"]`)."""
    return storages["default"]


def is_local() -> bool:
    """True when stored files are on this machine's filesystem (`file://`)."""
    return isinstance(storage(), FileSystemStorage)


def _fs(st: Storage) -> FileSystemStorage | None:
    return st if isinstance(st, FileSystemStorage) else None


def _s3_key(st: Any, name: str) -> str:
    from storages.utils import clean_name

    return str(st._normalize_name(clean_name(name)))


#: Held while a client or the session it is made from is made (`_s3_client` holds it around
#: `_new_client`, hence re-entrant).
_client_lock = threading.RLock()


def _new_lock() -> None:
    """A forked child starts with a free lock, whatever its parent's threads held at the fork."""
    global _client_lock
    _client_lock = threading.RLock()


os.register_at_fork(after_in_child=_new_lock)


def _s3_client(st: Any) -> Any:
    """One boto3 client per process for the storage `st`, shared by all its threads.

    django-storages keeps a connection per thread, and making one costs about 190 ms of CPU
    (a session loads and parses the service model): an evaluation chunk's writer thread is new
    each chunk, so per-thread clients cost more than the chunk's uploads. boto3 clients are
    thread-safe; resources, which django-storages keeps, are not. Keyed by pid: a forked pool
    child must not share its parent's connection pool."""
    held = st.__dict__.get("_evalsite_client")
    if held is not None and held[0] == os.getpid():
        return held[1]
    with _client_lock:
        held = st.__dict__.get("_evalsite_client")
        if held is None or held[0] != os.getpid():
            held = st.__dict__["_evalsite_client"] = (os.getpid(), _new_client(st))
    return held[1]


def _new_client(st: Any, config: Any = None) -> Any:
    """A boto3 S3 client for the storage `st` (its endpoint, region, keys and TLS settings),
    with `config` merged over the storage's own.

    Made from one boto3 session per storage, kept on it: the session's loader keeps the parsed
    service model, so every client after the first costs milliseconds instead of about 100 ms
    of CPU, in this process and in the pool processes forked from it (a session holds no
    connection, so a forked child may use its parent's). Sessions are not thread-safe: clients
    are made under a lock."""
    base = st.client_config
    with _client_lock:
        session = st.__dict__.get("_evalsite_session")
        if session is None:
            session = st.__dict__["_evalsite_session"] = st._create_session()
        return session.client(
            "s3",
            region_name=st.region_name,
            use_ssl=st.use_ssl,
            endpoint_url=st.endpoint_url,
            config=base.merge(config) if config is not None else base,
            verify=st.verify,
        )


def warm_up() -> None:
    """Load, in a worker's main process before it forks its pool, what the first bucket request
    of each pool process would otherwise load while a chunk waits: boto3 and the S3 service
    model (about 0.3 s of CPU). Nothing to do on the filesystem store."""
    st = storage()
    if _fs(st) is None:
        _s3_client(st)


def _not_found(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 404 or code in {"404", "NoSuchKey", "NotFound"}


@contextmanager
def _missing_is_file_not_found(name: str) -> Iterator[None]:
    """A bucket's "no such key" answer as the `FileNotFoundError` a filesystem read would raise,
    naming the stored file; every other error passes through."""
    try:
        yield
    except Exception as exc:
        if _not_found(exc):
            raise FileNotFoundError(f"stored file {name} is missing") from exc
        raise


@functools.lru_cache(maxsize=4)
def _cache(root: str, max_bytes: int) -> FileCache:
    return FileCache(Path(root), max_bytes)


def worker_cache() -> FileCache:
    """This machine's cache of stored files (`WORKER_CACHE_DIR`, `WORKER_CACHE_MAX_MB`)."""
    return _cache(str(settings.WORKER_CACHE_DIR), settings.WORKER_CACHE_MAX_MB * 2**20)


def local_path(name: str, *, sha256: str | None = None) -> Path:
    """A local path holding the stored file `name`.

    Filesystem: the file's own path (no copy, no check). Bucket: this worker's cached copy,
    downloaded on first use and verified against `sha256` when given (a mismatch raises
    `CorruptObject` naming the file); a missing object raises `FileNotFoundError` naming it.
    Give `sha256` for names whose bytes never change (set files, model files): the cache keeps a
    copy per (name, sha256); without it a copy is kept per (name, ETag), asked for each time.
    """
    st = storage()
    fs = _fs(st)
    if fs is not None:
        return Path(fs.path(name))

    def fetch(fh: BinaryIO) -> None:
        with _missing_is_file_not_found(name):
            _s3_client(st).download_fileobj(st.bucket_name, _s3_key(st, name), fh)  # type: ignore[attr-defined]

    # Without a sha256 the name's bytes may have been rewritten since a copy was cached (a
    # retried chunk's alpha): the object's ETag, one HEAD, keys the copy instead.
    version = "" if sha256 is not None else fingerprint(name)
    return worker_cache().get(name, sha256=sha256, fetch=fetch, version=version)


def open_read(name: str, *, st: Storage | None = None) -> IO[bytes]:
    """The stored file, open for reading (streamed from the bucket, not cached); `st`: another
    storage than the configured one (`storage_migrate`)."""
    st = st or storage()
    fs = _fs(st)
    if fs is not None:
        return open(fs.path(name), "rb")
    with _missing_is_file_not_found(name):
        body = _s3_client(st).get_object(Bucket=st.bucket_name, Key=_s3_key(st, name))["Body"]  # type: ignore[attr-defined]
    return body  # type: ignore[no-any-return]


def read_bytes(name: str) -> bytes:
    with open_read(name) as fh:
        return fh.read()


def exists(name: str) -> bool:
    return bool(storage().exists(name))


def delete(name: str) -> None:
    """Remove a stored file; nothing happens when it is not there."""
    st = storage()
    fs = _fs(st)
    if fs is not None:
        Path(fs.path(name)).unlink(missing_ok=True)
        return
    st.delete(name)


def _s3_keys(st: Any, prefix: str) -> Iterator[list[str]]:
    """The bucket's keys under the folder `prefix`, a listing page at a time."""
    pages = (
        _s3_client(st)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=st.bucket_name, Prefix=_s3_key(st, prefix).rstrip("/") + "/")
    )
    for page in pages:
        yield [obj["Key"] for obj in page.get("Contents", ())]


def names_under(prefix: str) -> list[str]:
    """The stored names of the files in the folder `prefix` and below it, sorted."""
    prefix = prefix.rstrip("/") + "/"
    st = storage()
    fs = _fs(st)
    if fs is not None:
        folder = Path(fs.path(prefix))
        if not folder.is_dir():
            return []
        return sorted(
            prefix + p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
        )
    location = str(getattr(st, "location", "") or "").strip("/")
    strip = len(location) + 1 if location else 0
    return sorted(key[strip:] for keys in _s3_keys(st, prefix) for key in keys)


def delete_prefix(prefix: str) -> bool:
    """Remove every stored file under the folder `prefix`; True when there was any."""
    prefix = prefix.rstrip("/") + "/"
    st = storage()
    fs = _fs(st)
    if fs is not None:
        folder = Path(fs.path(prefix))
        if not folder.exists():
            return False
        shutil.rmtree(folder)
        return True
    client, found = _s3_client(st), False
    for keys in _s3_keys(st, prefix):
        if keys:
            found = True
            client.delete_objects(
                Bucket=st.bucket_name,  # type: ignore[attr-defined]
                Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
            )
    return found


def fingerprint(name: str) -> str:
    """Changes whenever the stored file does (size and mtime, or the object's ETag): an HTTP
    ETag for pictures rendered from it. `FileNotFoundError` when it is not there."""
    st = storage()
    fs = _fs(st)
    if fs is not None:
        stat = os.stat(fs.path(name))
        return f"{stat.st_size:x}-{stat.st_mtime_ns:x}"
    with _missing_is_file_not_found(name):
        head = _s3_client(st).head_object(Bucket=st.bucket_name, Key=_s3_key(st, name))  # type: ignore[attr-defined]
    return f"{int(head['ContentLength']):x}-{str(head.get('ETag', '')).strip(chr(34))}"


def _atomic_target(fs: FileSystemStorage, name: str) -> tuple[Path, Path]:
    path = Path(fs.path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _put_params(name: str, sha256: str) -> dict[str, Any]:
    import mimetypes

    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return {"ContentType": content_type, "Metadata": {SHA256_META: sha256}}


def save_bytes(name: str, data: bytes) -> str:
    """Store `data` under `name` (replacing what was there, atomically); returns `name`."""
    st = storage()
    fs = _fs(st)
    if fs is not None:
        path, tmp = _atomic_target(fs, name)
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return name
    # Not kept in this worker's cache: what a chunk writes is rarely read back here (finalising
    # reads the chunks' curves, not the alphas), and in a cache bounded by bytes every alpha
    # written would push out set photos that every run of the set reads.
    _s3_client(st).put_object(
        Bucket=st.bucket_name,  # type: ignore[attr-defined]
        Key=_s3_key(st, name),
        Body=data,
        **_put_params(name, sha256_bytes(data)),
    )
    return name


def save_same(name: str, existing: str, data: bytes) -> str:
    """Make `data`, the bytes just stored as `existing`, readable as `name` too; returns the name
    to read them by (keep it in the record, not `name`).

    Filesystem: `name` becomes a hard link to `existing` (atomic; a copy of `data` where the
    filesystem has no links), so a folder stays complete for tools that read folders, at no
    extra space. Bucket: nothing is written and `existing` is returned: an object store has no
    links, and a second object of the same bytes is a second request and its bytes stored twice
    (with the server on the worker's cores, as in bench/storage.py, about 5 ms of CPU an image).
    """
    st = storage()
    fs = _fs(st)
    if fs is None:
        return existing
    path, tmp = _atomic_target(fs, name)
    try:
        os.link(fs.path(existing), tmp)
    except OSError:  # no hard links here (or a stale temporary name): write the bytes
        tmp.unlink(missing_ok=True)
        tmp.write_bytes(data)
    os.replace(tmp, path)
    return name


def save_file(name: str, source: Path, *, sha256: str | None = None, move: bool = False) -> str:
    """Store the local file `source` under `name`; `move` lets a filesystem store take the file
    itself by rename (same filesystem) instead of copying. Returns `name`."""
    st = storage()
    fs = _fs(st)
    if fs is not None:
        path, tmp = _atomic_target(fs, name)
        if move:
            try:
                os.replace(source, path)
                return name
            except OSError:  # another filesystem: copy below
                pass
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)
        return name
    upload(st, name, source, sha256=sha256 or sha256_file(source))
    if move:
        Path(source).unlink(missing_ok=True)
    return name


def upload(st: Storage, name: str, source: Path, *, sha256: str) -> None:
    """Put a local file into the bucket of `st` under `name`, its sha256 in the metadata
    (multipart for large files)."""
    _s3_client(st).upload_file(
        str(source),
        st.bucket_name,  # type: ignore[attr-defined]
        _s3_key(st, name),
        ExtraArgs=_put_params(name, sha256),
    )


def stored_sha256(name: str, *, st: Storage | None = None) -> str | None:
    """The sha256 kept in a bucket object's metadata (None on the filesystem, or without one)."""
    st = st or storage()
    if _fs(st) is not None:
        return None
    try:
        head = _s3_client(st).head_object(Bucket=st.bucket_name, Key=_s3_key(st, name))  # type: ignore[attr-defined]
    except Exception as exc:
        if _not_found(exc):
            return None
        raise
    value = head.get("Metadata", {}).get(SHA256_META)
    return str(value) if value else None


#: How long a worker's storage probe waits for the bucket before calling it unreachable: the
#: probe runs beside the heartbeat, which must not wait on a storage outage.
PROBE_TIMEOUT_SECONDS = 3.0


_probe_clients: dict[tuple[Any, ...], Any] = {}


def _probe_client(st: Any) -> Any:
    """A client with short timeouts and no retries, made once per storage configuration (making
    a boto3 client costs tens of milliseconds of CPU; the probe runs every few seconds)."""
    from botocore.config import Config

    ident = (st.endpoint_url, st.region_name, st.access_key, st.bucket_name)
    if ident not in _probe_clients:
        _probe_clients[ident] = _new_client(
            st,
            Config(
                connect_timeout=PROBE_TIMEOUT_SECONDS,
                read_timeout=PROBE_TIMEOUT_SECONDS,
                retries={"max_attempts": 1},
            ),
        )
    return _probe_clients[ident]


def storage_probe() -> dict[str, Any]:
    """What a worker reports in its heartbeat about storage: which backend, whether this machine
    reaches it now (the bucket answers, or MEDIA_ROOT is writable), and its cache's use."""
    st = storage()
    fs = _fs(st)
    cache = worker_cache()
    held, count = cache.usage()
    out: dict[str, Any] = {
        "backend": "file" if fs is not None else "s3",
        "cache_bytes": held,
        "cache_files": count,
        "cache_limit_bytes": cache.max_bytes,
    }
    if fs is not None:
        folder = Path(fs.location)
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # FileSystemStorage creates MEDIA_ROOT on the first write
        out["reachable"] = os.access(folder, os.W_OK)
        if not out["reachable"]:
            out["error"] = f"{fs.location} is not writable here"
        return out
    try:
        client = _probe_client(st)
        client.head_bucket(Bucket=st.bucket_name)  # type: ignore[attr-defined]
        out["reachable"] = True
    except Exception as exc:
        out["reachable"] = False
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out
