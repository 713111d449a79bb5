"""A model version's file as a local path, wherever the store is (`evalsite.core.files`).

Runtimes load a model from a path: on the filesystem it is the stored file itself; with a bucket
it is this worker's cached copy, fetched once per version and verified by the version's sha256
(a corrupt copy raises `CorruptObject` naming the file, and is never used).
"""

from __future__ import annotations

from pathlib import Path

from evalsite.core import files
from models.models import ModelVersion


def version_file(version: ModelVersion) -> Path | None:
    """The version's model file, or None for a version without one (builtin, external)."""
    if not version.file or not version.file.name:
        return None
    return files.local_path(str(version.file.name), sha256=version.sha256 or None)
