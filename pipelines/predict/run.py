"""The per-image loop of ``python -m pipelines.predict``: decode, run, post-process, write, report.

Why one image at a time with errors caught per image: one unreadable photo or one bad output must
fail that image only — the contract says the rest are still written (exit 1). A failed image leaves
no PNG behind (a stale one from an earlier run is removed), because run pages and ``metrics``
compute from exactly the files in ``--out``.
"""

from __future__ import annotations

import glob
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipelines.postprocess import decide, instance_cutouts, postprocess, rgba_cutout
from pipelines.postprocess import guided as guided_mod
from pipelines.postprocess.cutout import encode_png
from pipelines.spec import ModelSpec
from pipelines.stats.latency import latency_stats

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: Images excluded from the latency summary (first-call allocations, lazy kernel compilation);
#: they are still processed, written and listed per image (metrics.md: "warm-up images excluded
#: and counted"). One is enough for CPU runtimes; the summary says how many were excluded.
WARMUP_IMAGES = 1
STAGES = ("decode", "preprocess", "model", "postprocess", "write")


@dataclass(frozen=True)
class Options:
    out: Path
    cutouts: Path | None
    json_path: Path | None
    gate: bool
    threshold: float | None
    upsample: guided_mod.Method
    runtime: str
    model_label: str
    spec_source: str


def list_images(folder: Path) -> list[Path]:
    """Photos directly in ``folder`` (by suffix, case-insensitive; hidden files skipped), sorted."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def _write_png(path: Path, image: np.ndarray) -> None:
    """PNG via imencode + write_bytes (cv2.imwrite mishandles non-ASCII paths on some systems)."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode {path.name}")
    path.write_bytes(buf.tobytes())


def _remove_outputs(stem: str, opts: Options) -> None:
    """Delete this stem's files from an earlier run (alpha, cutout, instance cutouts)."""
    stale = [opts.out / f"{stem}.png"]
    if opts.cutouts is not None:
        stale.append(opts.cutouts / f"{stem}.png")
        stale += [
            Path(p) for p in glob.glob(str(opts.cutouts / f"{glob.escape(stem)}.instance-*.png"))
        ]
    for p in stale:
        p.unlink(missing_ok=True)


def _one_image(runner: Any, spec: ModelSpec, path: Path, opts: Options) -> dict[str, Any]:
    from pipelines.runners.images import load_image_rgb

    t0 = time.perf_counter()
    photo = load_image_rgb(path)
    decode_ms = (time.perf_counter() - t0) * 1e3
    raw = runner.predict(photo)
    t1 = time.perf_counter()
    post = postprocess(
        raw.alpha,
        raw.confidence,
        photo,
        spec,
        gate=opts.gate,
        threshold=opts.threshold,
        upsample=opts.upsample,
        letterbox=raw.letterbox,
    )
    t2 = time.perf_counter()
    # encode_png: byte for byte the alpha PNG an evaluation run stores (same digests)
    (opts.out / f"{path.stem}.png").write_bytes(encode_png(post.alpha_png))
    if opts.cutouts is not None:
        _write_png(opts.cutouts / f"{path.stem}.png", rgba_cutout(photo, post.alpha_png))
        crops = instance_cutouts(photo, post.alpha_png, post.instances)
        for n, crop in enumerate(crops, start=1):
            _write_png(opts.cutouts / f"{path.stem}.instance-{n}.png", crop)
    write_ms = (time.perf_counter() - t2) * 1e3
    return {
        "width": int(photo.shape[1]),
        "height": int(photo.shape[0]),
        "confidence": raw.confidence,
        "threshold": post.threshold,
        "below_threshold": decide(raw.confidence, post.threshold).gated,
        "gated": post.gated,
        "instance_count": post.instance_count,
        "latency_ms": {
            "decode": decode_ms,
            "preprocess": float(raw.timings.get("preprocess", 0.0)),
            "model": float(raw.timings.get("model", 0.0)),
            "postprocess": (t2 - t1) * 1e3,
            "write": write_ms,
        },
        "postprocess_ms": {k: round(v, 3) for k, v in post.timings.items()},
    }


def _latency_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """n, p50/p90, tail (p99 from 100 images, else max) and mean per stage, warm-up images
    excluded and counted (pipelines.stats.latency states the tail rule)."""
    ok = [r for r in rows if r["error"] is None]
    warm = ok[WARMUP_IMAGES:] if len(ok) > WARMUP_IMAGES else []
    out: dict[str, Any] = {"warmup_excluded": len(ok) - len(warm), "images": len(warm)}
    for stage in STAGES:
        values = [r["latency_ms"][stage] for r in warm]
        out[stage] = latency_stats(values) if values else None
    return out


def _settings(runner: Any, spec: ModelSpec, opts: Options) -> dict[str, Any]:
    return {
        "model": opts.model_label,
        "spec": opts.spec_source,
        "format": spec.format,
        "runtime": opts.runtime,
        "runner": runner.describe(),
        "gate": opts.gate,
        "gate_threshold": opts.threshold if opts.threshold is not None else spec.gate_threshold,
        "upsample": opts.upsample,
        "guided": {"radius": guided_mod.DEFAULT_RADIUS, "eps": guided_mod.DEFAULT_EPS},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
        },
        "cv2_threads": cv2.getNumThreads(),
    }


def predict_folder(
    runner: Any, spec: ModelSpec, images: list[Path], opts: Options
) -> dict[str, Any]:
    """Process every photo, write the outputs and (with ``json_path``) the report; return it."""
    opts.out.mkdir(parents=True, exist_ok=True)
    if opts.cutouts is not None:
        opts.cutouts.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for path in images:
        row: dict[str, Any] = {"name": path.stem, "file": path.name, "error": None}
        if path.stem in seen:
            row["error"] = (
                f"another photo, {seen[path.stem]}, has the same stem; "
                f"only one {path.stem}.png can be written"
            )
            rows.append(row)
            continue
        seen[path.stem] = path.name
        _remove_outputs(path.stem, opts)  # e.g. instance-3 from an earlier run that found three
        try:
            row.update(_one_image(runner, spec, path, opts))
        except Exception as e:  # one bad photo or output fails that photo only
            _remove_outputs(path.stem, opts)
            row["error"] = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
        rows.append(row)
    report = {
        "settings": _settings(runner, spec, opts),
        "images": rows,
        "errors": [
            {"name": r["name"], "file": r["file"], "error": r["error"]}
            for r in rows
            if r["error"] is not None
        ],
        "summary": {
            "images": len(rows),
            "written": sum(r["error"] is None for r in rows),
            "failed": sum(r["error"] is not None for r in rows),
            "gated": sum(bool(r.get("gated")) for r in rows),
            "latency_ms": _latency_summary(rows),
        },
    }
    if opts.json_path is not None:
        opts.json_path.parent.mkdir(parents=True, exist_ok=True)
        opts.json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    return report
