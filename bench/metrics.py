"""Benchmark: `python -m pipelines.metrics` end to end vs PySODMetrics on 3024×4032 pairs.

Builds eight 12-megapixel pred/GT pairs in a temporary folder (real PASCAL-S masks from
../shared/data upscaled when present, synthetic shapes otherwise; graded predictions by blur,
shift and noise), then in the same run:

* times the metrics command as a user runs it (a subprocess: start-up, PNG decoding, all metrics);
* times PySODMetrics loading the same PNGs (cv2.imread, as its README does) and computing
  MAE, S-measure, E-measure, F-measure and weighted F-measure;
* checks the numbers agree (1e-6; weighted F 1e-4) and prints both times and the ratio.

The command computes every metric of metrics.md, the cutout-quality ones (sad, mse_alpha, grad,
conn, boundary_iou) included; the reference computes only PySODMetrics' five, so the goal
(GOAL_SPEEDUP: at least 10× faster end to end) is judged with our extra work counted against us.
Exit status 1 when the numbers differ or the goal is missed.

Not a test (it takes about a minute): `make bench BENCH=metrics` (writes bench/results/metrics.txt)
or `.venv/bin/python bench/metrics.py`.
PySODMetrics is a test-only dependency; scikit-image, which its package __init__ imports but none
of these five metrics uses, is stubbed when absent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.support.judge import Judge
from bench.support.pysod import SOD_KEYS, load_pysod

ROOT = Path(__file__).resolve().parent.parent
PASCAL_MASKS = ROOT.parent / "shared" / "data" / "pascal-s" / "masks"
HEIGHT, WIDTH = 3024, 4032
N_PAIRS = 8
GOAL_SPEEDUP = 10.0
NEW_KEYS = ("sad", "mse_alpha", "grad", "conn", "boundary_iou")


def make_pairs(folder: Path, seed: int = 0) -> None:
    """Write N_PAIRS 3024×4032 `pred/<i>.png` and `gt/<i>.png` into `folder`."""
    rng = np.random.default_rng(seed)
    (folder / "pred").mkdir()
    (folder / "gt").mkdir()
    sources = sorted(PASCAL_MASKS.glob("*.png"))[::50][:N_PAIRS] if PASCAL_MASKS.is_dir() else []
    for i in range(N_PAIRS):
        if i < len(sources):
            small = cv2.imread(str(sources[i]), cv2.IMREAD_GRAYSCALE)
            big = cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
            gt = np.where(big > 127, 255, 0).astype(np.uint8)
        else:
            gt = np.zeros((HEIGHT, WIDTH), np.uint8)
            centre = (int(rng.integers(1000, 3000)), int(rng.integers(800, 2200)))
            axes = (int(rng.integers(300, 1200)), int(rng.integers(300, 900)))
            cv2.ellipse(gt, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        shifted = np.roll(gt, (int(rng.integers(-20, 20)), int(rng.integers(-20, 20))), (0, 1))
        soft = cv2.GaussianBlur(shifted, (0, 0), float(rng.uniform(5, 25))).astype(np.float32)
        noise = rng.normal(0, 10, gt.shape).astype(np.float32)
        pred = np.clip(soft * 0.9 + noise + 10, 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / "pred" / f"{i}.png"), pred)
        cv2.imwrite(str(folder / "gt" / f"{i}.png"), gt)


def run_command(folder: Path, workers: int | None) -> tuple[float, dict[str, Any]]:
    out = folder / f"metrics-{workers}.json"
    cmd = [sys.executable, "-m", "pipelines.metrics", "--pred", str(folder / "pred")]
    cmd += ["--gt", str(folder / "gt"), "--json", str(out)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, json.loads(out.read_text())


def run_pysod(folder: Path) -> tuple[float, dict[str, Any]]:
    sm = load_pysod()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its Fmeasure class announces its future removal
        metrics = {
            "mae": sm.MAE(),
            "sm": sm.Smeasure(),
            "em": sm.Emeasure(),
            "fm": sm.Fmeasure(),
            "wfm": sm.WeightedFmeasure(),
        }
        for pred_path in sorted((folder / "pred").glob("*.png")):
            pred = cv2.imread(str(pred_path), cv2.IMREAD_GRAYSCALE)
            gt = cv2.imread(str(folder / "gt" / pred_path.name), cv2.IMREAD_GRAYSCALE)
            for metric in metrics.values():
                metric.step(pred, gt)
        res = {k: m.get_results() for k, m in metrics.items()}
    elapsed = time.perf_counter() - start
    fm, em = res["fm"]["fm"], res["em"]["em"]
    summary = {
        "mae": res["mae"]["mae"],
        "s_measure": res["sm"]["sm"],
        "max_f": fm["curve"].max(),
        "mean_f": fm["curve"].mean(),
        "adaptive_f": fm["adp"],
        "max_e": em["curve"].max(),
        "mean_e": em["curve"].mean(),
        "adaptive_e": em["adp"],
        "weighted_f": res["wfm"]["wfm"],
    }
    curves = {
        "precision": res["fm"]["pr"]["p"],
        "recall": res["fm"]["pr"]["r"],
        "fmeasure": fm["curve"],
        "emeasure": em["curve"],
    }
    return elapsed, {"summary": summary, "curves": curves}


def compare(ours: dict[str, Any], ref: dict[str, Any]) -> tuple[float, float, bool]:
    """(max abs difference over SOD summaries and curves, weighted F difference, all within?)"""
    diffs = [abs(ours["summary"][k] - float(ref["summary"][k])) for k in SOD_KEYS]
    for key, curve in ref["curves"].items():
        diffs.append(float(np.max(np.abs(np.asarray(ours["curves"][key]) - curve))))
    wf = abs(ours["summary"]["weighted_f"] - float(ref["summary"]["weighted_f"]))
    return max(diffs), wf, max(diffs) <= 1e-6 and wf <= 1e-4


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=None, help="passed to the command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        folder = Path(tmp)
        make_pairs(folder)
        source = "PASCAL-S masks upscaled" if PASCAL_MASKS.is_dir() else "synthetic shapes"
        print(f"{N_PAIRS} pairs of {WIDTH}×{HEIGHT} ({source}); {os.cpu_count()} CPU cores")
        ours_s, ours = run_command(folder, args.workers)
        ref_s, ref = run_pysod(folder)
        worst, wf, agree = compare(ours, ref)
    speedup = ref_s / ours_s
    carried = all(ours["summary"].get(k) is not None for k in NEW_KEYS)
    print(
        f"python -m pipelines.metrics (end to end, all metrics incl. {', '.join(NEW_KEYS)}): "
        f"{ours_s:.2f} s"
    )
    print(f"PySODMetrics (load + MAE/S/E/F/wF), same run: {ref_s:.2f} s")
    print(f"speed-up: {speedup:.1f}×")
    print(f"max |diff| SOD summaries and curves: {worst:.2e} (tolerance 1e-6)")
    print(f"|diff| weighted F: {wf:.2e} (tolerance 1e-4)")
    judge = Judge()
    judge.goal("speed-up vs PySODMetrics, end to end", speedup, GOAL_SPEEDUP, "higher", "×")
    judge.check("SOD summaries, curves and weighted F agree with PySODMetrics", agree)
    judge.check("cutout-quality keys in the summary", carried)
    return judge.finish()


if __name__ == "__main__":
    sys.exit(main())
