"""Read-only queries of the eval app; query shapes (select/prefetch) are chosen here."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery

from evalsite.core.jobs import job_progress
from evalsite.core.selectors import NO_WORKERS, QueueWorkers, workers_by_queue
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.errors import RunNotFound
from evalsite.evals.models import (
    SORTABLE_METRICS,
    EvalRun,
    ItemResult,
    ResultStatus,
    RunComparison,
    RunStatus,
)
from models.models import ModelVersion
from pipelines.metrics.registry import by_column
from pipelines.parse import DIGITS, InvalidNumber, parse_id
from pipelines.payloads.fairness import PairedFairness
from pipelines.release.evidence import RoleOverlap, overlap_by_role

COREML_WAITING = "waiting for a macOS worker"
SORT_KEYS = (*SORTABLE_METRICS, "confidence", "stem", "status")


def run_queryset() -> QuerySet[EvalRun]:
    return EvalRun.objects.select_related(
        "model_version__family", "dataset_version__dataset", "created_by", "job", "parity_of"
    )


def run_get(run_id: int) -> EvalRun:
    """The run, or RunNotFound (pages answer 404, commands print the message)."""
    run = run_queryset().filter(pk=run_id).first()
    if run is None:
        raise RunNotFound(f"No run #{run_id}.")
    return run


def run_list(
    *, status: str = "", dataset_version: int | None = None, limit: int = 200
) -> list[EvalRun]:
    qs = run_queryset()
    if status:
        qs = qs.filter(status=status)
    if dataset_version:
        qs = qs.filter(dataset_version_id=dataset_version)
    return list(qs[:limit])


def runs_for_model_version(version: ModelVersion | int) -> QuerySet[EvalRun]:
    """Runs of a version, newest first (the registry's version page lists them)."""
    return run_queryset().filter(model_version=version)


def primary_run_ids(
    *,
    model_version_ids: Collection[int] | None = None,
    dataset_version_ids: Collection[int] | None = None,
) -> dict[tuple[int, int], int]:
    """The primary run's id per (model version, set version), optionally only for these ids.

    The one rule for "primary": the newest finished run with the default runtime and
    post-processing (a worker's, or an imported one of a version the workers cannot run); the
    release report, the leaderboard, the gate and the run page all stand on it.
    """
    rows = EvalRun.objects.filter(status=RunStatus.DONE, is_default_config=True)
    if model_version_ids is not None:
        rows = rows.filter(model_version_id__in=model_version_ids)
    if dataset_version_ids is not None:
        rows = rows.filter(dataset_version_id__in=dataset_version_ids)
    seen: dict[tuple[int, int], int] = {}
    ordered = rows.order_by("-finished_at", "-pk")
    for pk, mv, dv in ordered.values_list("pk", "model_version_id", "dataset_version_id"):
        seen.setdefault((mv, dv), pk)
    return seen


def primary_run(
    *, model_version: ModelVersion | int, dataset_version: DatasetVersion | int
) -> EvalRun | None:
    """The primary run of one version on one set version (`primary_run_ids`), or None."""
    mv = model_version if isinstance(model_version, int) else model_version.pk
    dv = dataset_version if isinstance(dataset_version, int) else dataset_version.pk
    pk = primary_run_ids(model_version_ids=[mv], dataset_version_ids=[dv]).get((mv, dv))
    return None if pk is None else run_queryset().filter(pk=pk).first()


def run_comparison_get(*, baseline: EvalRun, candidate: EvalRun) -> RunComparison | None:
    """The stored comparison of exactly these two runs' current outputs (None if never asked)."""
    return (
        RunComparison.objects.filter(
            baseline=baseline, candidate=candidate, baseline_digest=baseline.output_digest,
            candidate_digest=candidate.output_digest,
        ).first()
    )  # fmt: skip


def run_comparison_fairness(comparison: RunComparison | None) -> PairedFairness | None:
    """The per-group paired deltas stored with a comparison (the fairness compare page shows
    them), None while none are stored (no comparison yet, or its job has not finished)."""
    if comparison is None or "fairness" not in (comparison.payload or {}):
        return None
    return PairedFairness.from_dict(comparison.payload["fairness"])


def run_pair_get(a: str, b: str, *, usage: str = "Give two run ids") -> tuple[EvalRun, EvalRun]:
    """Runs `a` (baseline) and `b` (candidate) from their ids as a form or query gives them:
    InvalidNumber with `usage` and what was wrong (pages answer 400), RunNotFound for a missing
    run (404)."""
    try:
        ids = parse_id(a, name="a"), parse_id(b, name="b")
    except InvalidNumber as exc:
        raise InvalidNumber(f"{usage} ({exc})") from None
    return run_get(ids[0]), run_get(ids[1])


def waiting_note(run: EvalRun, queues: dict[str, QueueWorkers] | None = None) -> str:
    """Why an unfinished run is not moving: no live worker consumes its queue ("" otherwise)."""
    if run.is_finished:
        return ""
    queues = workers_by_queue() if queues is None else queues
    if queues.get(run.queue, NO_WORKERS).live:
        return ""
    if run.queue == "coreml":
        return COREML_WAITING
    return f"waiting for a worker on the {run.queue!r} queue (no live worker consumes it)"


def run_progress(run: EvalRun) -> dict[str, Any]:
    """Progress from database counts: results written and chunks by status."""
    counts = dict(
        ItemResult.objects.filter(run=run)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    total = run.dataset_version.item_count
    ok, failed = counts.get(ResultStatus.OK, 0), counts.get(ResultStatus.FAILED, 0)
    return {
        "id": run.pk,
        "status": run.status,
        "error": run.error,
        "items": total,
        "ok": ok,
        "failed": failed,
        "done": ok + failed,
        "percent": round(100.0 * (ok + failed) / total, 1) if total else 0.0,
        "chunks": job_progress(run.job) if run.job is not None else {},
        "waiting": waiting_note(run),
        "device": run.device,
        "finished": run.is_finished,
    }


def result_rows(
    run: EvalRun, *, sort: str = "iou", descending: bool = False, status: str = ""
) -> QuerySet[ItemResult]:
    """Per-image rows sorted by a metric (failed rows last); unknown keys fall back to stem."""
    key = sort if sort in SORT_KEYS else "stem"
    field = "item__stem" if key == "stem" else key
    qs = ItemResult.objects.filter(run=run).select_related("item")
    if status:
        qs = qs.filter(status=status)
    order = f"-{field}" if descending else field
    if key in SORTABLE_METRICS or key == "confidence":
        from django.db.models import F

        expr = F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)
        return qs.order_by(expr, "item__stem")
    return qs.order_by(order, "item__stem")


def result_get(run: EvalRun, item_id: int) -> ItemResult:
    row = ItemResult.objects.filter(run=run, item_id=item_id).select_related("item").first()
    if row is None:
        raise RunNotFound(f"Run #{run.pk} has no result for item {item_id}.")
    return row


def biased_evidence(
    *, versions: Sequence[ModelVersion], dataset_version: DatasetVersion
) -> list[RoleOverlap]:
    """Per version and role, the items of the set version the version declares it was trained,
    tuned or selected on (matched by each item's stored image sha256); [] when none overlap.

    The one overlap check behind run pages, run JSON/CSV, compare pages and release reports.
    """
    if not any(any(v.declared_data.values()) for v in versions):
        return []  # skip reading the items when nothing is declared
    items = list(dataset_version.items.values_list("stem", "image_sha256"))
    out: list[RoleOverlap] = []
    for version in versions:
        out.extend(overlap_by_role(version=version.ref, spec=version.spec, items=items))
    return out


def run_biased_evidence(run: EvalRun) -> list[RoleOverlap]:
    """`biased_evidence` of the run's version on the run's set version."""
    return biased_evidence(versions=[run.model_version], dataset_version=run.dataset_version)


def roles_by_stem(overlaps: Sequence[RoleOverlap]) -> dict[str, list[str]]:
    """stem -> the roles (trained / tuned / selected) its picture was declared for."""
    out: dict[str, list[str]] = {}
    for overlap in overlaps:
        for stem in overlap.stems:
            out.setdefault(stem, []).append(overlap.role)
    return out


#: What the compare table shows of a result (its image, status, error) besides the metric: the
#: rows' JSON columns (every metric, latency, files, instances) are most of their bytes, and
#: decoding them for 200 rows a page was a tenth of the page's time at 1000 items.
_COMPARE_FIELDS = ("run_id", "item_id", "status", "error", "item__id", "item__stem")


def compare_rows(a: EvalRun, b: EvalRun, *, metric: str = "iou") -> QuerySet[ItemResult]:
    """B's rows on the items both runs scored, annotated `va`, `vb` and `delta` (b − a), worst
    regression first (rows without a delta, i.e. a failure, lead). Sorted and sliced by the
    database, so a page of a 10 000-item comparison reads its 100 rows; `compare_page_rows`
    adds A's row to each."""
    if metric not in SORTABLE_METRICS:
        metric = "iou"
    base = ItemResult.objects.filter(run=a, item_id=OuterRef("item_id"))
    rows = (
        ItemResult.objects.filter(run=b)
        .filter(Exists(base))
        .annotate(va=Subquery(base.values(metric)[:1]), vb=F(metric))
        .annotate(delta=F("vb") - F("va"))
        .select_related("item")
        .only(*_COMPARE_FIELDS, metric)
    )
    # Worst first: the largest drop in quality; the item breaks ties so pages are stable.
    worst = (
        F("delta").desc(nulls_first=True)
        if by_column(metric).lower_is_better
        else F("delta").asc(nulls_first=True)
    )
    return rows.order_by(worst, "item_id")


def compare_regressions(rows: QuerySet[ItemResult], *, metric: str = "iou") -> int:
    """How many of `compare_rows` got worse on `metric`."""
    worse = Q(delta__gt=0) if by_column(metric).lower_is_better else Q(delta__lt=0)
    return rows.filter(worse).count()


def compare_page_rows(
    a: EvalRun, page: Sequence[ItemResult], *, metric: str = "iou"
) -> list[dict[str, Any]]:
    """One page of `compare_rows` as the compare table shows it: item, both rows, values, delta."""
    if metric not in SORTABLE_METRICS:
        metric = "iou"
    shown = ItemResult.objects.filter(run=a, item__in=[r.item_id for r in page])
    left = {r.item_id: r for r in shown.only(*_COMPARE_FIELDS[:4], metric)}
    rows = []
    for r in page:
        base = left[r.item_id]
        va, vb = getattr(base, metric), getattr(r, metric)
        delta = None if va is None or vb is None else vb - va
        rows.append({"item": r.item, "a": base, "b": r, "va": va, "vb": vb, "delta": delta})
    return rows


def identical_outputs(a: EvalRun, b: EvalRun) -> dict[str, int]:
    """How many shared images got byte-identical alpha PNGs in both runs (by stored sha256)."""
    left = dict(ItemResult.objects.filter(run=a).values_list("item_id", "alpha_sha256"))
    right = dict(ItemResult.objects.filter(run=b).values_list("item_id", "alpha_sha256"))
    shared = set(left) & set(right)
    same = sum(1 for i in shared if left[i] and left[i] == right[i])
    return {"identical": same, "compared": len(shared)}


def run_reproductions(run: EvalRun, limit: int = 10) -> list[EvalRun]:
    """Reproductions of this run, newest first (their stored verdicts are shown on its page)."""
    return list(run.reproductions.order_by("-pk")[:limit])


def noise_run(run: EvalRun) -> EvalRun | None:
    """The latest finished reproduction of this run's configuration (same config hash), whose
    stored comparison measures the run-to-run noise of its numbers; None if never reproduced."""
    reproductions = EvalRun.objects.filter(
        config_hash=run.config_hash, status=RunStatus.DONE, reproduce_of__isnull=False
    ).order_by("-finished_at", "-pk")
    return next((r for r in reproductions[:20] if r.reproduction), None)


def comparable_runs(run: EvalRun) -> QuerySet[EvalRun]:
    return (
        run_queryset()
        .filter(dataset_version=run.dataset_version, status=RunStatus.DONE)
        .exclude(pk=run.pk)
    )


def compare_pair(a: str, b: str) -> tuple[EvalRun, EvalRun]:
    """The runs behind `/runs/compare/?a=&b=`: run ids, or model refs (`family:alias`, `F:V`).

    For model refs (the registry's "vs production" links) the pair is the latest finished run of
    each version on the latest set version both were evaluated on. Raises ValueError with the
    message to show when the input names no such pair.
    """
    if DIGITS.fullmatch(a) and DIGITS.fullmatch(b):  # ASCII digits: ids (else model refs)
        return run_pair_get(a, b)
    from models.errors import VersionNotFound
    from models.selectors import model_version_resolve

    try:
        va, vb = model_version_resolve(a), model_version_resolve(b)
    except VersionNotFound as exc:
        raise ValueError(str(exc)) from None
    done = EvalRun.objects.filter(status=RunStatus.DONE)
    runs_a = done.filter(model_version=va).order_by("-created_at", "-pk")
    runs_b = done.filter(model_version=vb).order_by("-created_at", "-pk")
    common = runs_a.filter(dataset_version__in=runs_b.values("dataset_version")).values_list(
        "dataset_version", flat=True
    )
    dataset_version = common.first()
    if dataset_version is None:
        raise ValueError(
            f"{va.ref} and {vb.ref} have no finished runs on a common set version yet; start "
            "runs of both on the same set, then compare."
        )
    return (
        runs_a.filter(dataset_version=dataset_version).first(),  # type: ignore[return-value]
        runs_b.filter(dataset_version=dataset_version).first(),
    )
