"""Helpers of the import tests: prediction folders and zips built from a set version's items."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from django.conf import settings
from PIL import Image

from evalsite.core.models import Job
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.models import EvalRun, ItemResult
from pipelines.metrics.io import read_gray8


def write_predictions(dv: DatasetVersion, folder: Path, *, erode: int = 0) -> Path:
    """One 8-bit `<stem>.png` per item: its ground-truth mask (optionally shrunk by `erode` px)."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in dv.items.all():
        mask = read_gray8(Path(item.mask.path))
        if erode:
            import cv2

            mask = cv2.erode(mask, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
        Image.fromarray(mask).save(folder / f"{item.stem}.png")
    return folder


def zip_folder(folder: Path, *, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, arcname=path.name)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def clear_run_folders() -> None:
    """Run folders of earlier tests (their rows were rolled back, their files stay)."""
    import shutil

    shutil.rmtree(Path(settings.MEDIA_ROOT) / "runs", ignore_errors=True)


def nothing_created(jobs_before: int = 0) -> None:
    """No run, no result, no job and no run folder under MEDIA_ROOT."""
    assert EvalRun.objects.count() == 0
    assert ItemResult.objects.count() == 0
    assert Job.objects.filter(kind="evals.import").count() == jobs_before
    runs = Path(settings.MEDIA_ROOT) / "runs"
    assert not runs.exists() or not any(runs.iterdir()), list(runs.iterdir())
