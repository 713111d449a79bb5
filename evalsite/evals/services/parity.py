"""Cross-runtime parity: does the ONNX / Core ML conversion give the same output as its source?

Why the ungated PNGs: gating depends on a confidence threshold, so a tiny confidence drift could
flip a whole image; comparing the ungated full-resolution alphas measures the conversion itself,
and the confidence difference is reported beside it. IoU is on the binarised alphas (≥ 128, the
metrics' rule); max abs difference is on the 0–1 scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalsite.evals.models import EvalRun, ItemResult, ResultStatus, RunStatus
from evalsite.evals.services.artefacts import media_root
from pipelines.metrics.io import read_gray8

#: Parity rows kept on the run (the worst first); the summary numbers cover every image.
PARITY_ROWS = 200


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union


def parity_between(source: EvalRun, other: EvalRun) -> dict[str, Any]:
    """Per-image IoU and max abs difference of two runs' ungated alphas on their shared items."""
    root = media_root()
    mine = {
        r.item_id: r for r in ItemResult.objects.filter(run=source, status=ResultStatus.OK)
    }
    rows = []
    for r in ItemResult.objects.filter(run=other, status=ResultStatus.OK).select_related("item"):
        base = mine.get(r.item_id)
        if base is None:
            continue
        a = read_gray8(root / base.artefacts["alpha_ungated"])
        b = read_gray8(root / r.artefacts["alpha_ungated"])
        if a.shape != b.shape:
            rows.append({"stem": r.item.stem, "iou": 0.0, "max_abs_diff": 1.0,
                         "confidence_diff": None, "note": "output sizes differ"})  # fmt: skip
            continue
        diff = int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max(initial=0)) / 255.0
        conf = None
        if base.confidence is not None and r.confidence is not None:
            conf = abs(base.confidence - r.confidence)
        rows.append({"stem": r.item.stem, "iou": _iou(a >= 128, b >= 128),
                     "max_abs_diff": diff, "confidence_diff": conf})  # fmt: skip
    rows.sort(key=lambda row: (row["iou"], -row["max_abs_diff"]))
    ious = [row["iou"] for row in rows]
    diffs = [row["max_abs_diff"] for row in rows]
    return {
        "against_run": source.pk,
        "against": source.model_version.ref,
        "items": len(rows),
        "mean_iou": float(np.mean(ious)) if ious else None,
        "min_iou": float(np.min(ious)) if ious else None,
        "max_abs_diff": float(np.max(diffs)) if diffs else None,
        "rows": rows[:PARITY_ROWS],
    }


def _store(child: EvalRun, parent: EvalRun) -> None:
    summary = dict(child.summary or {})
    summary["parity"] = parity_between(parent, child)
    EvalRun.objects.filter(pk=child.pk).update(summary=summary)


def parity_refresh(*, run: EvalRun) -> None:
    """Compute parity for whichever pairs around this run are now both finished."""
    parent = run.parity_of
    if parent is not None and parent.status == RunStatus.DONE and run.status == RunStatus.DONE:
        _store(run, parent)
    if run.status == RunStatus.DONE:
        for child in run.parity_runs.filter(status=RunStatus.DONE):
            _store(child, run)
