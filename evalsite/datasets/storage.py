"""Content-addressed set files (`cas/` in the store, `evalsite.core.files`) and the import's
staging area.

Why content-addressed: a file's name is its sha256, so a picture shared by several versions (or
sets) is stored once, a stored file can never change under a version, a worker's cached copy is
verified by its name, and moving a staged file into a filesystem store is a single atomic rename
(staging sits inside MEDIA_ROOT then; with a bucket it is a local temporary folder and committing
uploads each new file).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.db.models.fields.files import FieldFile

from evalsite.core import files
from pipelines.imaging import Blob

CAS_DIR = "cas"
STAGING_DIR = ".staging"
UPLOAD_DIR = "uploads"


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def blob_name(sha256: str, ext: str) -> str:
    """Storage name relative to MEDIA_ROOT, as kept in the FileFields."""
    return f"{CAS_DIR}/{sha256[:2]}/{sha256[2:4]}/{sha256}{ext}"


_CAS_NAME = re.compile(r"cas/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})(\.[A-Za-z0-9]{1,8})?")


def cas_sha256(name: str) -> str | None:
    """The sha256 a content-addressed name carries, or None for another name."""
    match = _CAS_NAME.fullmatch(name)
    return match.group(1) if match else None


def item_file(field: FieldFile | str) -> Path:
    """A local path of one of an item's stored files (the file itself on the filesystem; a
    worker's verified cached copy with a bucket)."""
    name = str(field.name if isinstance(field, FieldFile) else field)
    return files.local_path(name, sha256=cas_sha256(name))


def staging_create() -> Path:
    """A private folder for an import's files: inside MEDIA_ROOT when that is the store (same
    filesystem, so commits are renames), else in the local temporary folder."""
    base = media_root() if files.is_local() else Path(settings.TEMP_ROOT)
    path = base / STAGING_DIR / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


def staging_remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    try:
        path.parent.rmdir()  # leave no empty .staging behind when no other import runs
    except OSError:
        pass


def blobs_commit(blobs: Iterable[Blob]) -> list[str]:
    """Move staged blobs into the store; return the names this call created (for rollback)."""
    created: list[str] = []
    done: set[str] = set()
    for blob in blobs:
        name = blob_name(blob.sha256, blob.ext)
        if name in done:
            continue
        done.add(name)
        if files.exists(name):
            continue
        files.save_file(name, Path(blob.path), sha256=blob.sha256, move=True)
        created.append(name)
    return created


def blobs_remove(names: Iterable[str]) -> None:
    """Undo `blobs_commit` after the database transaction failed (no orphan files)."""
    for name in names:
        files.delete(name)


def upload_store(chunks: Iterable[bytes]) -> str:
    """Keep an uploaded zip until a worker imports it; returns what `DatasetImport.upload` holds:
    its absolute path under MEDIA_ROOT/uploads/, or its name in the bucket."""
    if files.is_local():
        folder = media_root() / UPLOAD_DIR
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{uuid.uuid4().hex}.zip"
        with open(target, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        return str(target)
    Path(settings.TEMP_ROOT).mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=settings.TEMP_ROOT, suffix=".zip", delete=False) as tmp:
        for chunk in chunks:
            tmp.write(chunk)
    return files.save_file(f"{UPLOAD_DIR}/{uuid.uuid4().hex}.zip", Path(tmp.name), move=True)


@contextlib.contextmanager
def upload_local(upload: str) -> Iterator[Path]:
    """A local path of a kept upload (downloaded to a temporary file from a bucket)."""
    if Path(upload).is_absolute():
        yield Path(upload)
        return
    Path(settings.TEMP_ROOT).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.TEMP_ROOT) as tmp:
        target = Path(tmp) / Path(upload).name
        with files.open_read(upload) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield target


def upload_remove(upload: str) -> None:
    if Path(upload).is_absolute():
        Path(upload).unlink(missing_ok=True)
    else:
        files.delete(upload)


def upload_label(upload: str) -> str:
    return Path(upload).name
