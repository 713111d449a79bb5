"""Reading predictions made elsewhere (a device, another framework, a vendor) for scoring.

Pure: paths and bytes in, arrays and messages out (the platform's import service and its tests use
it; nothing here knows about runs or the database).

Reading rules (metrics.md "Inputs", plus what an importer is owed): an 8-bit greyscale PNG is the
alpha as is — exactly what ``python -m pipelines.predict --out`` writes. A 16-bit greyscale PNG is
scaled to 8 bit as round(v16 / 257) (``pipelines.metrics.io.read_gray8``), with a note. An RGBA or
grey+alpha PNG (a cutout) gives its alpha channel, with a note; an RGB or palette PNG without
transparency gives its luminance (Pillow's ``convert("L")``, as the metrics read it), with a note.
Anything that is not a PNG is refused: a JPEG alpha has lost values to compression.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.metrics.io import read_gray8
from pipelines.postprocess.instances import MIN_INSTANCE_AREA_FRACTION, separate_instances
from pipelines.postprocess.pipeline import PostResult

PREDICTION_SUFFIX = ".png"
#: Stems listed per problem in a message (the rest are counted).
LIST_LIMIT = 20
LATENCY_STAGE_COLUMNS = {"preprocess_ms": "preprocess", "model_ms": "model",
                         "postprocess_ms": "postprocess"}  # fmt: skip
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


class PredictionError(Exception):
    """A prediction file that cannot be scored; the message names the file and the fix."""


@dataclass(frozen=True)
class Prediction:
    alpha: np.ndarray  # H×W uint8, the 8-bit alpha the metrics read
    note: str = ""  # how a non-8-bit-greyscale file was read ("" when read as is)


def read_prediction(path: Path, *, label: str = "") -> Prediction:
    """Decode one prediction PNG by the rules above; PredictionError names the file."""
    name = label or path.name
    try:
        with Image.open(path) as im:
            fmt, mode, (w, h) = im.format, im.mode, im.size
            if fmt != "PNG":
                raise PredictionError(
                    f"{name}: not a PNG (found {fmt or 'unknown'} data); export each alpha as an "
                    "8-bit greyscale PNG"
                )
            transparent = mode == "P" and "transparency" in im.info
            if mode in _ALPHA_MODES or transparent:
                rgba = im.convert("RGBA") if mode in {"P", "PA", "RGBa", "La"} else im
                alpha = np.asarray(rgba.getchannel("A"), dtype=np.uint8).copy()
                return Prediction(alpha, f"{name}: {mode} PNG, read its alpha channel")
    except PredictionError:
        raise
    except Image.DecompressionBombError:
        raise PredictionError(
            f"{name}: the PNG claims more pixels than any set image may have "
            "(decompression-bomb guard); export the alpha at its image's size"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:  # what Pillow raises on corrupt files
        # Pillow quotes the file's path, which is a server folder for an uploaded zip.
        why = str(exc).replace(str(path), name)
        raise PredictionError(f"{name}: cannot read the PNG ({why})") from exc
    try:
        alpha = read_gray8(path)
    except Exception as exc:  # PairError: the message already names the path
        raise PredictionError(f"{name}: {str(exc).replace(str(path), name)}") from exc
    if alpha.shape != (h, w):  # pragma: no cover - read_gray8 keeps the size
        raise PredictionError(f"{name}: decoded to an unexpected shape {alpha.shape}")
    if mode == "L":
        return Prediction(alpha)
    if mode in _SIXTEEN_BIT_MODES:
        return Prediction(alpha, f"{name}: 16-bit PNG, scaled to 8 bit as round(v / 257)")
    return Prediction(alpha, f"{name}: {mode} PNG without alpha channel, read its luminance")


def listed(stems: list[str], limit: int = LIST_LIMIT) -> str:
    """`a, b, c` with at most `limit` names, then `(+N more)`."""
    shown = ", ".join(stems[:limit])
    return shown + (f" (+{len(stems) - limit} more)" if len(stems) > limit else "")


@dataclass
class FolderScan:
    """Prediction files by stem, and the problems of the folder's other entries."""

    files: dict[str, Path] = field(default_factory=dict)
    not_png: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def scan_folder(folder: Path) -> FolderScan:
    """Visible entries of `folder` (not recursive): `<stem>.png` files; symlinks are refused."""
    scan = FolderScan()
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_symlink():
            scan.unsafe.append(path.name)
        elif path.is_dir():
            continue  # e.g. a --cutouts folder inside; never read
        elif path.suffix.lower() != PREDICTION_SUFFIX:
            scan.not_png.append(path.name)
        elif path.stem in scan.files:
            scan.duplicates.append(path.name)
        else:
            scan.files[path.stem] = path
    return scan


def stem_problems(found: set[str], expected: set[str]) -> tuple[list[str], list[str]]:
    """(missing, extra) stems, sorted."""
    return sorted(expected - found), sorted(found - expected)


# The largest per-image latency accepted from a device, in ms (one hour). Anything above is a
# unit or export mistake, and values near the float maximum (1e308) overflow to infinity in the
# run's sums and percentiles, which cannot be stored: refused here, where the user can fix them.
MAX_LATENCY_MS = 3_600_000.0


class LatencyError(Exception):
    """A latency CSV that cannot be used; `problems` name the file, row and column."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def _number(raw: str, where: str, problems: list[str]) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{where}: {raw!r} is not a number")
        return None
    if not math.isfinite(value):
        problems.append(f"{where}: {raw!r} is not a finite number")
        return None
    if value < 0:
        problems.append(f"{where}: {raw!r} is negative")
        return None
    if value > MAX_LATENCY_MS:
        problems.append(
            f"{where}: {raw!r} ms is more than one hour per image ({MAX_LATENCY_MS:.0f} ms); "
            "check the unit (milliseconds)"
        )
        return None
    return value


def parse_latency_csv(
    text: str, *, stems: set[str], label: str = "latency CSV"
) -> dict[str, dict[str, float]]:
    """`image,ms[,preprocess_ms,model_ms,postprocess_ms]` → {stem: {stage: ms, "total": ms}}.

    `image` may be a stem or a file name (`img01.png`, `img01.jpg`). Every stem of `stems` must
    have exactly one row; unknown stems, duplicates, non-numeric / NaN / negative values and
    missing columns raise LatencyError listing each problem (with its row number).
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [c.strip() for c in reader.fieldnames or []]
    if "image" not in columns or "ms" not in columns:
        raise LatencyError(
            [f"{label}: needs the columns image,ms (found {','.join(columns) or 'nothing'})"]
        )
    reader.fieldnames = columns
    stages = [c for c in LATENCY_STAGE_COLUMNS if c in columns]
    problems: list[str] = []
    rows: dict[str, dict[str, float]] = {}
    unknown: list[str] = []
    for n, row in enumerate(reader, start=2):  # row 1 is the header
        raw_image = (row.get("image") or "").strip()
        stem = Path(raw_image).stem if Path(raw_image).suffix else raw_image
        if stem not in stems:
            unknown.append(raw_image or f"(empty, row {n})")
            continue
        if stem in rows:
            problems.append(f"{label} row {n}: {raw_image} appears twice")
            continue
        entry: dict[str, float] = {}
        for column in ["ms", *stages]:
            value = _number((row.get(column) or "").strip(), f"{label} row {n} {column}", problems)
            if value is not None:
                entry["total" if column == "ms" else LATENCY_STAGE_COLUMNS[column]] = value
        rows[stem] = entry
    if unknown:
        problems.append(f"{label}: images not in the set: {listed(unknown)}")
    missing = sorted(stems - rows.keys())
    if missing:
        problems.append(f"{label}: no row for {listed(missing)}")
    if problems:
        raise LatencyError(problems)
    return rows


def imported_postresult(
    alpha_png: np.ndarray, *, min_instance_area: float = MIN_INSTANCE_AREA_FRACTION
) -> PostResult:
    """The `PostResult` of an alpha produced elsewhere: already full size, quantised and gated.

    Nothing is upsampled or gated here (the device did that); there is no confidence, so the
    ungated alpha is the imported one. An all-zero alpha is what the device showed as "no
    subject", so it counts as gated (an importer cannot tell a confidence gate from an empty
    prediction, and a user sees the same thing). Instances are split exactly as for worker runs.
    """
    alpha = np.ascontiguousarray(alpha_png, dtype=np.uint8)
    instances = separate_instances(alpha, min_area_fraction=min_instance_area)
    return PostResult(
        alpha_full=alpha.astype(np.float32) / 255.0,
        alpha_png=alpha,
        ungated_png=alpha,
        gated=not alpha.any(),
        confidence=None,
        threshold=float("nan"),
        instances=instances,
    )


def latency_csv_from_report(report: dict[str, object]) -> str:
    """The latency CSV of a `python -m pipelines.predict --json` report (images that succeeded).

    `ms` is preprocess + model + postprocess, the stages a worker run's total counts (decoding
    the photo and writing the PNG are left out, as on a worker).
    """
    lines = ["image,ms,preprocess_ms,model_ms,postprocess_ms"]
    images = report.get("images")
    for row in images if isinstance(images, list) else []:
        if row.get("error") is not None:
            continue
        ms = row["latency_ms"]
        stages = [float(ms["preprocess"]), float(ms["model"]), float(ms["postprocess"])]
        lines.append(",".join([str(row["name"]), *(f"{v:.3f}" for v in [sum(stages), *stages])]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m pipelines.imports --latency-csv REPORT.json > latency.csv` (on the device)."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m pipelines.imports",
        description="Write the latency CSV that `import_predictions --latency` reads from a "
        "`python -m pipelines.predict --json` report.",
    )
    parser.add_argument("--latency-csv", type=Path, required=True, metavar="REPORT.json")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.latency_csv.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: {args.latency_csv}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(latency_csv_from_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
