"""Content-addressed file store under MEDIA_ROOT/cas/ and the import's staging area.

Why content-addressed: a file's name is its sha256, so a picture shared by several versions (or
sets) is stored once, a stored file can never change under a version, and moving a staged file
into place is a single atomic rename on the same filesystem.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings

from pipelines.imaging import Blob

CAS_DIR = "cas"
STAGING_DIR = ".staging"
UPLOAD_DIR = "uploads"


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def blob_name(sha256: str, ext: str) -> str:
    """Storage name relative to MEDIA_ROOT, as kept in the FileFields."""
    return f"{CAS_DIR}/{sha256[:2]}/{sha256[2:4]}/{sha256}{ext}"


def staging_create() -> Path:
    """A private folder inside MEDIA_ROOT (same filesystem, so commits are renames)."""
    path = media_root() / STAGING_DIR / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


def staging_remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    try:
        path.parent.rmdir()  # leave no empty .staging behind when no other import runs
    except OSError:
        pass


def blobs_commit(blobs: Iterable[Blob]) -> list[Path]:
    """Move staged blobs into the store; return the paths this call created (for rollback)."""
    root = media_root()
    created: list[Path] = []
    done: set[str] = set()
    for blob in blobs:
        name = blob_name(blob.sha256, blob.ext)
        if name in done:
            continue
        done.add(name)
        target = root / name
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(blob.path, target)
        created.append(target)
    return created


def blobs_remove(paths: Iterable[Path]) -> None:
    """Undo `blobs_commit` after the database transaction failed (no orphan files)."""
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def upload_path() -> Path:
    folder = media_root() / UPLOAD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{uuid.uuid4().hex}.zip"
