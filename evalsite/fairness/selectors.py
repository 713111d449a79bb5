"""Fairness reads: the stored report a page shows, leaderboard summaries, paired group deltas."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Max

from evalsite.datasets.selectors import revision_pick
from evalsite.evals.models import EvalRun, RunStatus
from evalsite.fairness.inputs import (
    NO_PERSON_ATTRIBUTES,
    NoPersonAttributes,
    load_inputs,
    person_attributes,
)
from evalsite.fairness.models import FairnessReport
from pipelines.fairness import paired_attribute_deltas
from pipelines.payloads.fairness import (
    PAIRED_FAIRNESS_VERSION,
    FairnessSummary,
    PairedFairness,
    RunFairness,
)


@dataclass
class FairnessState:
    """What a page shows for a run: a stored report, or why there is none."""

    report: FairnessReport | None
    message: str = ""
    pending: bool = False


def fairness_state(*, run: EvalRun) -> FairnessState:
    """The default report for the run's latest attribute revision, or the reason there is none."""
    revision = revision_pick(version=run.dataset_version)
    if revision is None or not person_attributes(revision):
        return FairnessState(None, NO_PERSON_ATTRIBUTES)
    if run.status != RunStatus.DONE:
        return FairnessState(
            None,
            f"the run is {run.status}; fairness is computed when it finishes",
            pending=run.status in {"queued", "running"},
        )
    report = (
        FairnessReport.objects.filter(run=run, attribute_revision=revision, is_default=True)
        .select_related("attribute_revision")
        .first()
    )
    if report is None:
        return FairnessState(
            None,
            f"the fairness report for attribute revision {revision.number} is being computed",
            pending=True,
        )
    return FairnessState(report)


def fairness_summaries(*, runs: list[EvalRun]) -> dict[int, RunFairness]:
    """Per run id, its default report's summary (worst group, largest gap per metric) and flag
    count, from the newest attribute revision."""
    out: dict[int, RunFairness] = {}
    rows = FairnessReport.objects.filter(run__in=runs, is_default=True).order_by(
        "run_id", "-attribute_revision__number"
    )
    for row in rows.values("run_id", "summary", "flag_count", "synthetic_labels"):
        if row["run_id"] not in out:
            out[row["run_id"]] = RunFairness(
                summary=FairnessSummary.from_dict(row["summary"]),
                flags=row["flag_count"],
                synthetic_labels=row["synthetic_labels"],
            )
    return out


def fairness_fingerprint() -> str:
    """How many reports are stored and when the newest was: changes whenever one is stored (the
    leaderboard, which shows their summaries, rebuilds on it)."""
    agg = FairnessReport.objects.aggregate(n=Count("pk"), last=Max("created_at"))
    return f"{agg['n']}:{agg['last'].isoformat() if agg['last'] else '-'}"


def fairness_paired(
    *,
    baseline: EvalRun,
    candidate: EvalRun,
    rounds: int = 2000,
    min_group_size: int = 30,
    seed: int = 0,
) -> PairedFairness:
    """Per-group paired deltas candidate - baseline on the person items both runs scored.

    Raises NoPersonAttributes; ValueError when the runs are on different set versions.
    """
    if baseline.dataset_version_id != candidate.dataset_version_id:
        raise ValueError("the two runs are on different set versions; compare runs on one set")
    base = load_inputs(run=baseline)
    cand = load_inputs(run=candidate)
    common = sorted(set(base.item_ids) & set(cand.item_ids))
    bi = {item: k for k, item in enumerate(base.item_ids)}
    ci = {item: k for k, item in enumerate(cand.item_ids)}
    b_idx = [bi[i] for i in common]
    c_idx = [ci[i] for i in common]
    rows = (
        paired_attribute_deltas(
            {m: v[b_idx] for m, v in base.metrics.items()},
            {m: v[c_idx] for m, v in cand.metrics.items()},
            [base.skin_tone[k] for k in b_idx],
            [base.perceived_gender[k] for k in b_idx],
            skin_tone_groups=baseline.dataset_version.dataset.skin_tone_groups,
            min_group_size=min_group_size,
            rounds=rounds,
            seed=seed,
        )
        if common
        else []
    )
    return PairedFairness(
        version=PAIRED_FAIRNESS_VERSION,
        baseline=baseline.pk,
        candidate=candidate.pk,
        n=len(common),
        min_group_size=min_group_size,
        attribute_revision=base.revision.number,
        synthetic_labels=base.synthetic_labels,
        groups=tuple(rows),
    )


def fairness_paired_section(*, baseline: EvalRun, candidate: EvalRun) -> PairedFairness:
    """What a run comparison stores for the fairness compare page (so that page, a GET, computes
    nothing): `fairness_paired`, or one whose `message` says the set has no person attributes."""
    try:
        return fairness_paired(baseline=baseline, candidate=candidate)
    except NoPersonAttributes as exc:
        return PairedFairness.unavailable(str(exc), baseline=baseline.pk, candidate=candidate.pk)
