"""Checking a folder of imported predictions against a set version, before anything is written.

Every problem is collected (not only the first) so one correction round fixes them all; each names
the file (or the stems) and what to do. Decoding follows `pipelines.imports` (metrics.md rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsite.datasets.models import DatasetVersion
from evalsite.evals.errors import EvalError
from pipelines.imports import (
    LatencyError,
    PredictionError,
    listed,
    parse_latency_csv,
    read_prediction,
    scan_folder,
    stem_problems,
)

#: Problems shown per import refusal; the count of the rest is added.
MAX_PROBLEMS = 50


class ImportRefused(EvalError):
    """The predictions cannot be imported; nothing was created. `problems` name the files."""

    def __init__(self, problems: list[str]):
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"… and {len(problems) - MAX_PROBLEMS} more problem(s)")
        self.problems = shown
        super().__init__("\n".join(shown))


@dataclass
class CheckedImport:
    """A folder that passed every check: prediction files by stem, notes and device latency."""

    files: dict[str, Path]
    notes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    latency: dict[str, dict[str, float]] | None = None


def predictions_check(
    *,
    folder: Path,
    dataset_version: DatasetVersion,
    ignore_extra: bool = False,
    latency_csv: str | None = None,
    latency_label: str = "latency CSV",
    label: str = "",
) -> CheckedImport:
    """Check `folder` (one `<stem>.png` per item) against the set version; ImportRefused if not."""
    name = label or folder.name
    if not folder.is_dir():
        raise ImportRefused([f"{name}: no such folder"])
    items: dict[str, Any] = {
        i.stem: i for i in dataset_version.items.only("stem", "width", "height")
    }
    scan = scan_folder(folder)
    problems: list[str] = []
    if scan.unsafe:
        problems.append(
            f"{name}: symbolic links are not read: {listed(scan.unsafe)}; copy the files instead"
        )
    if scan.not_png:
        problems.append(
            f"{name}: not PNG files: {listed(scan.not_png)}; the folder holds one 8-bit "
            "greyscale <stem>.png alpha per image (what `python -m pipelines.predict --out` writes)"
        )
    if scan.duplicates:
        problems.append(f"{name}: several files per stem: {listed(scan.duplicates)}")
    if not scan.files and not problems:
        raise ImportRefused(
            [f"{name}: no prediction PNGs found (the folder is empty); expected one <stem>.png "
             f"for each of the {len(items)} images of {dataset_version.spec}"]
        )  # fmt: skip
    missing, extra = stem_problems(set(scan.files), set(items))
    if missing:
        problems.append(
            f"{name}: {len(missing)} image(s) of {dataset_version.spec} have no prediction: "
            f"{listed([m + '.png' for m in missing])}"
        )
    if extra and not ignore_extra:
        problems.append(
            f"{name}: {len(extra)} PNG(s) match no image of {dataset_version.spec}: "
            f"{listed([e + '.png' for e in extra])}; remove them or pass --ignore-extra"
        )
    notes: list[str] = []
    for stem, path in sorted(scan.files.items()):
        item = items.get(stem)
        if item is None:
            continue
        try:
            prediction = read_prediction(path)
        except PredictionError as exc:
            problems.append(str(exc))
            continue
        h, w = prediction.alpha.shape
        if (w, h) != (item.width, item.height):
            problems.append(
                f"{path.name}: prediction is {w}×{h} but the photo is {item.width}×{item.height} "
                "(W×H, EXIF orientation applied); export the alpha at the photo's size"
            )
        if prediction.note:
            notes.append(prediction.note)
    latency = None
    if latency_csv is not None:
        try:
            latency = parse_latency_csv(latency_csv, stems=set(items), label=latency_label)
        except LatencyError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ImportRefused(problems)
    files = {stem: path for stem, path in scan.files.items() if stem in items}
    return CheckedImport(files=files, notes=notes, ignored=extra, latency=latency)
