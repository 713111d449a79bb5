"""The web / API door of imported runs: a zip of `<stem>.png` alphas → `eval_run_import` (job).

The archive is extracted by the set importer's `archive_extract` into a temporary folder under
TEMP_ROOT removed afterwards, whatever happens; every entry is checked before a byte is written,
and no message leaving this door shows that folder's path.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile

from evalsite.core.tempdirs import scrub_paths, temp_folder
from evalsite.datasets.archive import archive_extract
from evalsite.datasets.errors import ImportRejected, format_entry
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.errors import EvalError
from evalsite.evals.imports.checks import ImportRefused
from evalsite.evals.imports.services import eval_run_import
from evalsite.evals.models import EvalRun
from models.models import ModelVersion


@contextmanager
def extracted_zip(upload: UploadedFile | Path, *, label: str) -> Iterator[Path]:
    """The predictions folder inside an uploaded zip, in a temporary folder removed afterwards.

    Extracted by the set importer's `archive_extract`, which checks every entry first (absolute
    paths, `..`, symlinks, encrypted entries, zip bombs); the top level or a single top folder
    holds the PNGs.
    """
    with temp_folder("import-") as tmp:
        root = Path(tmp)
        archive = root / "upload.zip"
        if isinstance(upload, Path):
            shutil.copyfile(upload, archive)
        else:
            with open(archive, "wb") as fh:
                for part in upload.chunks():
                    fh.write(part)
        try:
            dest = archive_extract(
                archive,
                root / "files",
                max_total_bytes=settings.DATASET_ZIP_MAX_BYTES,
                dataset_root=False,
            )
        except ImportRejected as exc:
            problems = [format_entry({**e, "file": f"{label}: {e['file']}"}) for e in exc.entries]
            raise ImportRefused([scrub_paths(p, root / "files", root) for p in problems]) from None
        try:
            yield _predictions_root(dest)
        except ImportRefused as exc:
            raise ImportRefused([scrub_paths(p, dest, root) for p in exc.problems]) from None
        except EvalError as exc:
            text = scrub_paths(str(exc), dest, root)
            if text == str(exc):
                raise
            raise EvalError(text) from None


def _predictions_root(folder: Path) -> Path:
    """The top of the archive, or its single top folder when the PNGs were zipped in one."""
    entries = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def eval_run_import_upload(
    *,
    upload: UploadedFile,
    model_version: ModelVersion,
    dataset_version: DatasetVersion,
    user: User,
    latency: UploadedFile | None = None,
    **metadata: Any,
) -> EvalRun:
    """The web / API door: a zip of `<stem>.png` (+ optional latency CSV) → a queued import job."""
    label = upload.name or "upload.zip"
    latency_csv = None
    if latency is not None:
        try:
            latency_csv = latency.read().decode("utf-8")
        except UnicodeDecodeError:
            raise ImportRefused([f"{latency.name}: not a UTF-8 text CSV"]) from None
    with extracted_zip(upload, label=label) as folder:
        return eval_run_import(
            folder=folder,
            model_version=model_version,
            dataset_version=dataset_version,
            user=user,
            latency_csv=latency_csv,
            latency_label=(latency.name if latency is not None else "") or "latency CSV",
            import_name=label,
            mode="job",
            **metadata,
        )
