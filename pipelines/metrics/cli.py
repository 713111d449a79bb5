"""`python -m pipelines.metrics --pred DIR --gt DIR --json OUT [--threshold 0.5] [--workers N]`.

Exit status: 0 all pairs evaluated; 1 some pair had an error (listed in the JSON's `errors`, left
out of `per_image` and `summary`; the JSON is still written); 2 bad arguments. Curves in the JSON
are PySODMetrics-ordered: index k is the 8-bit threshold 255 − k.

Speed: images are independent, so they go to a process pool (`--workers`, default = CPU cores),
each worker with one OpenCV thread. Nothing here imports torch or Django: start-up is part of the
timed run.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import PIL

from pipelines.cli_args import directory, positive_int, unit_interval

from .aggregate import MetricAggregator
from .functional import evaluate_pair
from .io import Pair, PairError, load_pair, pair_files
from .registry import BY_NAME

METRICS_VERSION = "2"  # bump when a number this command produces changes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.metrics",
        description="Evaluate predicted masks against ground truth (IoU, precision, recall, "
        "boundary F, the SOD family with PySODMetrics 1.6 semantics, and cutout quality on the "
        "alpha: SAD, MSE, gradient and connectivity errors as mmagic, Boundary IoU).",
    )
    parser.add_argument("--pred", required=True, type=directory, help="folder of <stem>.png")
    parser.add_argument(
        "--gt", required=True, type=directory, help="folder of <stem>.png|.bmp|.jpg"
    )
    parser.add_argument("--json", required=True, type=Path, help="where to write the results")
    parser.add_argument(
        "--threshold", type=unit_interval, default=0.5,
        help="binary prediction = v/255 > threshold (default 0.5: 128 and above)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=positive_int, default=os.cpu_count() or 1,
        help="worker processes (default: number of CPU cores)",
    )  # fmt: skip
    return parser


JobResult = tuple[str, dict[str, Any] | None, str, list[str]]


def _evaluate_file_pair(job: tuple[Pair, float]) -> JobResult:
    """(name, result or None, error message, warnings) of one pair; runs in a worker."""
    pair, threshold = job
    try:
        pred, gt, warnings = load_pair(pair)
    except PairError as exc:
        return pair.name, None, str(exc), []
    return pair.name, evaluate_pair(pred, gt, threshold), "", warnings


def _single_threaded_opencv() -> None:
    # One process per core already, so OpenCV threads would only oversubscribe; and its
    # multi-threaded distance transform rounds differently (~1e-12 in weighted F), so the
    # numbers would depend on --workers.
    cv2.setNumThreads(1)


def _start_method() -> str | None:
    """fork when this process has a single OS thread, else forkserver.

    fork lets workers inherit the already-imported numpy/cv2 (the command line's case), but
    forking a process with other threads (OpenCV's pool after earlier work, a DB driver, a test
    runner) can leave a lock held forever in the child.
    """
    methods = multiprocessing.get_all_start_methods()
    tasks = Path("/proc/self/task")
    single = tasks.is_dir() and len(list(tasks.iterdir())) == 1
    if "fork" in methods and single:
        return "fork"
    return "forkserver" if "forkserver" in methods else None


def _run(pairs: list[Pair], threshold: float, workers: int) -> Iterator[JobResult]:
    jobs = [(p, threshold) for p in pairs]
    workers = min(workers, len(jobs))
    _single_threaded_opencv()
    if workers <= 1:
        yield from map(_evaluate_file_pair, jobs)
        return
    context = multiprocessing.get_context(_start_method())
    init = _single_threaded_opencv
    with ProcessPoolExecutor(workers, mp_context=context, initializer=init) as pool:
        yield from pool.map(_evaluate_file_pair, jobs)


def _versions() -> dict[str, str]:
    return {
        "pipelines.metrics": METRICS_VERSION,
        "sod_semantics": "PySODMetrics 1.6",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "pillow": PIL.__version__,
    }


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_finite_or_none(document), indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json.is_dir():
        parser.error(f"--json: {str(args.json)!r} is a directory; give a file path")
    pairs, errors = pair_files(args.pred, args.gt)
    if not pairs and not errors:
        parser.error(f"nothing to evaluate: no .png in {args.pred} and no masks in {args.gt}")

    aggregator = MetricAggregator(threshold=args.threshold)
    for name, result, error, warnings in _run(pairs, args.threshold, args.workers):
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if result is None:
            errors.append({"name": name, "error": error})
        else:
            aggregator.add(name, result)
    errors.sort(key=lambda e: e["name"])

    document = {
        **aggregator.compute(),
        "errors": errors,
        "settings": {"threshold": args.threshold, "gt_rule": ">127", "versions": _versions()},
    }
    _write_json(args.json, document)

    summary = document["summary"]
    keys = ("iou", "max_f", "s_measure", "mae")
    shown = ", ".join(
        f"{BY_NAME[k].label} {BY_NAME[k].format(summary[k])}"
        for k in keys
        if summary[k] is not None
    )
    print(f"{len(aggregator)} images evaluated, {len(errors)} errors -> {args.json}  {shown}")
    for err in errors:
        print(f"error: {err['name']}: {err['error']}", file=sys.stderr)
    return 1 if errors else 0
