"""Gather the arrays of a release report from the database (pairing, attributes, latency, votes).

Everything statistical happens in `pipelines.release`; this module only reads rows and lines them
up by item, so the report can be rebuilt from the same arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from django.contrib.auth.models import User

from evalsite.datasets.models import AttributeRevision, AttributeSource, ItemAttribute
from evalsite.evals.models import (
    EvalRun,
    RunSource,
    RunStatus,
)
from evalsite.evals.pairing import NothingToPair, paired_results
from evalsite.evals.summary import run_summary
from pipelines.release import CrowdVotes, ReleaseInputs

NOT_APPLICABLE = "not_applicable"


def newest_revision(dataset_version_id: int) -> AttributeRevision | None:
    return AttributeRevision.objects.filter(version=dataset_version_id).order_by("-number").first()


def revision_of(run: EvalRun) -> AttributeRevision | None:
    """The attribute revision a report reads for a run: the one the run pinned, else the newest."""
    return run.attribute_revision or newest_revision(run.dataset_version_id)


def _attributes(
    run: EvalRun, item_ids: list[int]
) -> tuple[dict[str, list[str]] | None, bool, int | None]:
    revision = revision_of(run)
    if revision is None:
        return None, False, None
    rows = {
        a["item_id"]: a
        for a in ItemAttribute.objects.filter(revision=revision, item_id__in=item_ids).values(
            "item_id", "skin_tone", "perceived_gender", "source"
        )
    }
    if not rows:
        return None, False, revision.pk
    tones, genders = [], []
    for item_id in item_ids:
        row = rows.get(item_id)  # an item the revision does not label counts as "no person"
        tones.append(row["skin_tone"] if row else NOT_APPLICABLE)
        genders.append(row["perceived_gender"] if row else NOT_APPLICABLE)
    synthetic = any(r["source"] == AttributeSource.SYNTHETIC for r in rows.values())
    return {"skin_tone": tones, "perceived_gender": genders}, synthetic, revision.pk


def _latency_of(run: EvalRun) -> dict[str, Any]:
    summary = run_summary(run) if run.has_latency else None
    total = summary.latency.total() if summary is not None else None
    if total is None:
        return {"run": run.pk, "n": 0, "p50": None, "p99": None, "max": None, "tail": None,
                "tail_ms": None}  # fmt: skip
    view = total.to_dict()
    device = view.pop("device")
    return {"run": run.pk, **view, "device_reported": device}


def latency_side(run: EvalRun) -> dict[str, Any]:
    """n, p50 and the tail (p99 from 100 images, else max) of total latency with runtime and
    device; an imported device run of the same version and set is preferred when it measured
    latency (that is what users' phones see)."""
    imported = EvalRun.objects.filter(
        model_version=run.model_version_id, dataset_version=run.dataset_version_id,
        status=RunStatus.DONE, source=RunSource.IMPORTED, has_latency=True,
    ).order_by("-finished_at", "-pk").first()  # fmt: skip
    chosen = imported if imported is not None else run
    out = _latency_of(chosen)
    if out["tail_ms"] is None and chosen is not run:
        chosen, out = run, _latency_of(run)
    out.update({
        "runtime": chosen.runtime_label or chosen.runtime,
        "device": chosen.device or out.get("device_reported") or "unknown",
        "source": chosen.source,
    })  # fmt: skip
    return out


def crowd_votes(campaign: Any, *, candidate_run: int, baseline_run: int) -> CrowdVotes | None:
    """Non-gold votes between the two runs (annotators the campaign report excludes left out), in
    candidate orientation: 0 candidate better, 1 baseline better, 2 tie, 3 both bad; in arrival
    order, with the campaign's alpha, margin and number of pairs, so the crowd gate's sequential
    decision is the one the campaign page shows for this pair."""
    if campaign is None:
        return None
    from ratings.models import SIMULATED_GROUP, Rating, Stratum
    from ratings.services.reports import excluded_annotators

    pair = (candidate_run, baseline_run)
    rows = list(
        Rating.objects.filter(campaign=campaign, task__run_a__in=pair, task__run_b__in=pair)
        .exclude(task__stratum=Stratum.GOLD)
        .exclude(annotator__username__in=excluded_annotators(campaign=campaign))
        .exclude(outcome="")
        .order_by("pk")
        .values_list("task__item_id", "task__run_a_id", "outcome", "task__stratum", "reasons",
                     "annotator_id")
    )  # fmt: skip
    simulated = set(
        User.objects.filter(groups__name=SIMULATED_GROUP, pk__in={r[5] for r in rows})
        .values_list("pk", flat=True)
    )  # fmt: skip
    code = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}
    swap = {0: 1, 1: 0, 2: 2, 3: 3}
    outcome = [code[o] if run_a == candidate_run else swap[code[o]] for _, run_a, o, *_ in rows]
    return CrowdVotes(
        campaign=campaign.pk,
        items=np.array([r[0] for r in rows], np.int64),
        outcome=np.array(outcome, np.int64),
        stratum=np.array([r[3] for r in rows], dtype=str),
        reasons=[list(r[4] or []) for r in rows],
        simulated=np.array([r[5] in simulated for r in rows], bool),
        alpha=campaign.alpha,
        margin=campaign.margin,
        pairs=math.comb(campaign.runs.count(), 2),
    )


def gather(report: Any) -> list[ReleaseInputs]:
    """The inputs of every set version of the report's suite, in its order (quality set first).
    Crowd votes go with the set whose two runs the report's campaign compares."""
    sets = list(report.sets.select_related("dataset_version__dataset", "candidate_run",
                                           "baseline_run").order_by("position"))  # fmt: skip
    campaign = report.campaign
    crowd_set = None
    if campaign is not None:
        compared = set(campaign.runs.values_list("pk", flat=True))
        crowd_set = next(
            (rs.pk for rs in sets if {rs.candidate_run_id, rs.baseline_run_id} <= compared), None
        )
    return [gather_set(report, rs, campaign if rs.pk == crowd_set else None) for rs in sets]


def gather_set(report: Any, report_set: Any, campaign: Any) -> ReleaseInputs:
    """Pair the two runs' per-image results on one set version by item and collect its inputs."""
    cand_run, base_run = report_set.candidate_run, report_set.baseline_run
    dataset_version = report_set.dataset_version
    try:  # the same pairing as the compare page's stored intervals
        paired = paired_results(baseline=base_run, candidate=cand_run)
    except NothingToPair as exc:
        from evalsite.releases.errors import ReleaseError

        raise ReleaseError(str(exc)) from None
    usable = [it["id"] for it in paired.items]
    attributes, synthetic, revision = _attributes(cand_run, usable)
    return ReleaseInputs(
        candidate=report.candidate.ref, baseline=report.baseline.ref,
        dataset=dataset_version.spec,
        runs={"candidate": cand_run.pk, "baseline": base_run.pk},
        items=paired.items,
        baseline_metrics=paired.baseline, candidate_metrics=paired.candidate,
        baseline_gated=paired.baseline_gated, candidate_gated=paired.candidate_gated,
        no_subject=paired.no_subject,
        latency={"candidate": latency_side(cand_run), "baseline": latency_side(base_run)},
        postprocess={"candidate": cand_run.postprocess or {},
                     "baseline": base_run.postprocess or {}},
        attributes=attributes, synthetic_labels=synthetic,
        tone_groups=dataset_version.dataset.skin_tone_groups,
        crowd=crowd_votes(campaign, candidate_run=cand_run.pk, baseline_run=base_run.pk),
        dropped=paired.dropped,
        instance_baseline=paired.instance_baseline,
        instance_candidate=paired.instance_candidate,
        extra={"report": report.pk, "attribute_revision": revision,
               "campaign": report.campaign_id},
    )  # fmt: skip
