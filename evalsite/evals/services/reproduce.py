"""Reproducing a run: evaluate the same configuration again and say whether the outputs repeat.

Why: a release decision compares deltas of a few thousandths; they mean nothing unless a run
repeats. A reproduction is an ordinary run (same model version, set version, runtime,
post-processing and chunk size) pointing back with `reproduce_of`. When it finishes, the job's
done hook (`eval_run_finalise`) calls :func:`reproduction_refresh`, which compares it image by
image with the original and STORES the verdict on the reproduction (pages only read it):

- identical / different per image by the sha256 of the stored (gated) alpha PNGs;
- for every shared image, IoU and max |Δ alpha| of the two alphas (`parity_between`, which uses
  `pipelines.metrics.functional.binary_iou`);
- the run-to-run noise per metric (`pipelines.stats.noise.run_to_run_noise`), which the compare
  page and release reports use to mark deltas within noise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.db import transaction

from evalsite.evals.errors import EvalError
from evalsite.evals.models import (
    SORTABLE_METRICS,
    EvalRun,
    ItemResult,
    ResultStatus,
    RunSource,
    RunStatus,
)
from evalsite.evals.services.parity import parity_between
from evalsite.evals.services.runs import eval_run_rerun
from pipelines.metrics.registry import BY_NAME, image_key_label, run_metrics, stored_metrics
from pipelines.stats.noise import delta_within_noise, run_to_run_noise

#: Differing images listed on the reproduction (worst first); the counts cover every image.
DIFFERENT_ROWS = 200


def eval_run_reproduce(*, run: EvalRun, user: User | None = None) -> EvalRun:
    """Start a run with `run`'s configuration that reports, when done, whether it repeated."""
    if run.source == RunSource.IMPORTED:
        raise EvalError(
            f"run #{run.pk} holds imported predictions (not run here), so it cannot be "
            "reproduced on a worker; import the predictions again to compare"
        )
    if run.status != RunStatus.DONE:
        raise EvalError(
            f"run #{run.pk} is {run.status}; only a finished (done) run can be reproduced"
        )
    with transaction.atomic():  # the chunks are enqueued on commit, with reproduce_of set
        new = eval_run_rerun(run=run, user=user)
        EvalRun.objects.filter(pk=new.pk).update(reproduce_of=run)
        new.reproduce_of = run
    return new


def _finite(value: float | None) -> float | None:
    """JSON-safe number (PostgreSQL's json rejects NaN)."""
    return None if value is None or math.isnan(value) else float(value)


def _worker_facts(run: EvalRun) -> dict[str, Any]:
    workers = (run.environment or {}).get("workers") or [{}]
    first = workers[0] or {}
    return {
        "threads": first.get("runtime_threads"),
        "device": run.device or first.get("device"),
        "determinism": first.get("determinism") or {},
    }


def _metric_arrays(
    original: EvalRun, reproduction: EvalRun
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    fields = ("item_id", *SORTABLE_METRICS)
    ok = {"status": ResultStatus.OK}
    left = {r["item_id"]: r for r in ItemResult.objects.filter(run=original, **ok).values(*fields)}
    right = {
        r["item_id"]: r for r in ItemResult.objects.filter(run=reproduction, **ok).values(*fields)
    }
    shared = sorted(set(left) & set(right))

    def column(rows: dict[int, dict[str, Any]], metric: str) -> np.ndarray:
        return np.array(
            [np.nan if rows[i][metric] is None else rows[i][metric] for i in shared], np.float64
        )

    # Keyed by the registry's metric name: the mean of the per-image `max_f` column is "mean
    # per-image max F" (`image_max_f`), not the set curve's max F of the summary's `max_f`.
    stored = [(m.name, m.column or m.name) for m in stored_metrics()]
    return (
        {name: column(left, col) for name, col in stored},
        {name: column(right, col) for name, col in stored},
    )


def verdict_text(*, identical: int, items: int, noise: dict[str, dict[str, Any]]) -> str:
    """'reproduced 30/30 identical', or the count plus the noise level per metric."""
    text = f"reproduced {identical}/{items} identical"
    if identical == items:
        return text
    levels = [
        f"{image_key_label(BY_NAME[m].column or m)} {v['max_abs_item_delta']:.4f}"
        for m, v in noise.items()
        if v.get("max_abs_item_delta") not in (None, 0.0)
    ]
    return text + ("; max |Δ| per image: " + ", ".join(levels) if levels else "")


def reproduction_compare(*, original: EvalRun, reproduction: EvalRun) -> dict[str, Any]:
    """The stored comparison of a reproduction with its original (see the module docstring)."""
    left = {
        r.item_id: r
        for r in ItemResult.objects.filter(run=original)
        .select_related("item")
        .only("item_id", "status", "alpha_sha256", "item__stem")
    }
    right = {
        r.item_id: r
        for r in ItemResult.objects.filter(run=reproduction).only(
            "item_id", "status", "alpha_sha256"
        )
    }
    shared = sorted(set(left) & set(right))
    identical = 0
    status_changed: list[str] = []
    for item_id in shared:
        a, b = left[item_id], right[item_id]
        if a.status != b.status:
            status_changed.append(a.item.stem)
        elif a.status == ResultStatus.FAILED or (
            a.alpha_sha256 and a.alpha_sha256 == b.alpha_sha256
        ):
            identical += 1  # the same file, or failed both times
    pixels = parity_between(original, reproduction, role="alpha")
    different = [
        {**row, "iou": _finite(row["iou"]), "max_abs_diff": _finite(row["max_abs_diff"])}
        for row in pixels["rows"]
        if row["iou"] < 1.0 or row["max_abs_diff"] > 0.0
    ]
    noise = {
        m: {k: _finite(v) if isinstance(v, float) else v for k, v in n.as_dict().items()}
        for m, n in run_to_run_noise(*_metric_arrays(original, reproduction)).items()
    }
    # The page shows the run-level numbers of the summary (some, like max F, are not means of
    # per-image values), so the noise of those numbers is their own difference.
    summary_a = (original.summary or {}).get("metrics") or {}
    summary_b = (reproduction.summary or {}).get("metrics") or {}
    set_level: dict[str, float | None] = {}
    for m in run_metrics():
        if summary_a.get(m.name) is None or summary_b.get(m.name) is None:
            continue
        delta = _finite(abs(float(summary_a[m.name]) - float(summary_b[m.name])))
        if m.name in noise:
            noise[m.name]["summary_delta"] = delta
        else:  # a set-level number (e.g. the set curve's max F): no per-image noise
            set_level[m.name] = delta
    before, after = _worker_facts(original), _worker_facts(reproduction)
    return {
        "of": original.pk,
        "items": len(shared),
        "identical": identical,
        "verdict": verdict_text(identical=identical, items=len(shared), noise=noise),
        "digest_match": bool(original.output_digest)
        and original.output_digest == reproduction.output_digest,
        "different": different[:DIFFERENT_ROWS],
        "different_count": len(shared) - identical,
        "status_changed": status_changed[:DIFFERENT_ROWS],
        "min_iou": _finite(pixels["min_iou"]),
        "max_abs_diff": _finite(pixels["max_abs_diff"]),
        "noise": noise,
        "set_level_noise": set_level,
        "threads": {"original": before["threads"], "reproduction": after["threads"]},
        "devices": {"original": before["device"], "reproduction": after["device"]},
        "determinism": after["determinism"],
    }


def reproduction_refresh(*, run: EvalRun) -> None:
    """Store the comparison once both the reproduction and its original are done (idempotent)."""
    original = run.reproduce_of
    if original is None or run.status != RunStatus.DONE or original.status != RunStatus.DONE:
        return
    comparison = reproduction_compare(original=original, reproduction=run)
    EvalRun.objects.filter(pk=run.pk).update(reproduction=comparison)
    run.reproduction = comparison


def noise_level(reproduction: EvalRun | None, metric: str) -> float | None:
    """Run-level noise of `metric` measured by a stored reproduction: how far the summary number
    moved between the run and its reproduction; None when not measured."""
    if reproduction is None:
        return None
    stored = reproduction.reproduction or {}
    level = (stored.get("noise") or {}).get(metric) or {}
    value = level.get("summary_delta", level.get("mean_delta"))
    if value is None:
        value = (stored.get("set_level_noise") or {}).get(metric)
    return None if value is None else float(value)


def within_run_noise(
    delta: float, noise_a: EvalRun | None, noise_b: EvalRun | None, metric: str
) -> bool | None:
    """Whether a delta between runs A and B is within their measured run-to-run noise (None:
    a run's configuration was never reproduced, so the noise is not known)."""
    return delta_within_noise(delta, [noise_level(noise_a, metric), noise_level(noise_b, metric)])
