"""Cross-runtime parity: does the ONNX / Core ML conversion give the same output as its source?

Why the ungated PNGs: gating depends on a confidence threshold, so a tiny confidence drift could
flip a whole image; comparing the ungated full-resolution alphas measures the conversion itself,
and the confidence difference is reported beside it. An imported run has only the alphas the
device shipped (gated, no confidence), so when either side is imported the shipped alphas of both
are compared. IoU is `pipelines.metrics.functional.binary_iou` (the metrics' ≥ 128 rule, both
empty = 1); max abs difference is on the 0–1 scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalsite.evals.models import EvalRun, ItemResult, ResultStatus, RunSource, RunStatus
from evalsite.evals.services.artefacts import run_file
from pipelines.masks import pred_foreground
from pipelines.metrics.functional import binary_iou
from pipelines.metrics.io import read_gray8

#: Parity rows kept on the run (the worst first); the summary numbers cover every image.
PARITY_ROWS = 200


def parity_role(source: EvalRun, other: EvalRun) -> str:
    """The artefact compared: ungated alphas, or the shipped ones when a side was imported."""
    imported = RunSource.IMPORTED in (source.source, other.source)
    return "alpha" if imported else "alpha_ungated"


def parity_between(source: EvalRun, other: EvalRun, *, role: str | None = None) -> dict[str, Any]:
    """Per-image IoU and max abs difference of two runs' alphas on their shared items.

    ``role``: the artefact to compare (default :func:`parity_role`); reproductions compare the
    gated ``alpha``, the file their digests cover.
    """
    role = role or parity_role(source, other)
    mine = {r.item_id: r for r in ItemResult.objects.filter(run=source, status=ResultStatus.OK)}
    rows: list[dict[str, Any]] = []
    for r in ItemResult.objects.filter(run=other, status=ResultStatus.OK).select_related("item"):
        base = mine.get(r.item_id)
        if base is None:
            continue
        a = read_gray8(run_file(base.artefacts[role]))
        b = read_gray8(run_file(r.artefacts[role]))
        if a.shape != b.shape:
            rows.append({"stem": r.item.stem, "iou": 0.0, "max_abs_diff": 1.0,
                         "confidence_diff": None, "note": "output sizes differ"})  # fmt: skip
            continue
        diff = int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max(initial=0)) / 255.0
        conf = None
        if base.confidence is not None and r.confidence is not None:
            conf = abs(base.confidence - r.confidence)
        iou = binary_iou(b, pred_foreground(a))
        rows.append({"stem": r.item.stem, "iou": iou,
                     "max_abs_diff": diff, "confidence_diff": conf})  # fmt: skip
    rows.sort(key=lambda row: (row["iou"], -row["max_abs_diff"]))
    ious = [row["iou"] for row in rows]
    diffs = [row["max_abs_diff"] for row in rows]
    return {
        "against_run": source.pk,
        "against": source.model_version.ref,
        "against_source": source.source,
        "compared": "shipped (gated) alphas" if role == "alpha" else "ungated alphas",
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
