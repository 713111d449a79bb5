"""Gather the arrays of a release report from the database (pairing, attributes, latency, votes).

Everything statistical happens in `pipelines.release`; this module only reads rows and lines them
up by item, so the report can be rebuilt from the same arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.contrib.auth.models import User

from evalsite.datasets.models import AttributeRevision, AttributeSource, ItemAttribute
from evalsite.evals.models import (
    SORTABLE_METRICS,
    EvalRun,
    ItemResult,
    ResultStatus,
    RunSource,
    RunStatus,
)
from pipelines.release import CrowdVotes, ReleaseInputs

NOT_APPLICABLE = "not_applicable"


def _attributes(
    run: EvalRun, item_ids: list[int]
) -> tuple[dict[str, list[str]] | None, bool, int | None]:
    revision = run.attribute_revision or (
        AttributeRevision.objects.filter(version=run.dataset_version_id).order_by("-number").first()
    )
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
    devices = ((run.summary or {}).get("latency") or {}).get("devices") or {}
    if not devices or not run.has_latency:
        return {"run": run.pk, "p50": None, "p99": None}
    name, best = max(devices.items(), key=lambda kv: kv[1].get("n", 0))
    total = (best.get("stages") or {}).get("total") or {}
    return {
        "run": run.pk,
        "p50": total.get("p50"),
        "p99": total.get("p99"),
        "n": best.get("n"),
        "device_reported": name,
    }


def latency_side(run: EvalRun) -> dict[str, Any]:
    """p50/p99 of total latency with runtime/device; an imported device run of the same version
    and set is preferred when it measured latency (that is what users' phones see)."""
    imported = EvalRun.objects.filter(
        model_version=run.model_version_id, dataset_version=run.dataset_version_id,
        status=RunStatus.DONE, source=RunSource.IMPORTED, has_latency=True,
    ).order_by("-finished_at", "-pk").first()  # fmt: skip
    chosen = imported if imported is not None else run
    out = _latency_of(chosen)
    if out["p99"] is None and chosen is not run:
        chosen, out = run, _latency_of(run)
    out.update({
        "runtime": chosen.runtime_label or chosen.runtime,
        "device": chosen.device or out.get("device_reported") or "unknown",
        "source": chosen.source,
    })  # fmt: skip
    return out


def excluded_annotators(campaign: Any) -> set[str]:
    """Annotators the campaign's stored report leaves out (gold QC), when the campaign says so."""
    if not campaign.exclude_flagged:
        return set()
    from ratings.models import CampaignSnapshot

    snap = CampaignSnapshot.objects.filter(campaign=campaign).first()
    qc = ((snap.payload if snap else None) or {}).get("qc") or {}
    return {str(name) for name in qc.get("excluded") or []}


def crowd_votes(campaign: Any, *, candidate_run: int, baseline_run: int) -> CrowdVotes | None:
    """Non-gold votes between the two runs (annotators the campaign report excludes left out), in
    candidate orientation: 0 candidate better, 1 baseline better, 2 tie, 3 both bad."""
    if campaign is None:
        return None
    from ratings.models import SIMULATED_GROUP, Rating, Stratum

    pair = (candidate_run, baseline_run)
    rows = list(
        Rating.objects.filter(campaign=campaign, task__run_a__in=pair, task__run_b__in=pair)
        .exclude(task__stratum=Stratum.GOLD)
        .exclude(annotator__username__in=excluded_annotators(campaign))
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
    )


def gather(report: Any) -> ReleaseInputs:
    """Pair the runs' per-image results by item and collect every input of the report."""
    cand_run, base_run = report.candidate_run, report.baseline_run
    fields = ("item_id", "item__stem", "item__size_bucket", "gated", *SORTABLE_METRICS)

    def rows(run: EvalRun) -> dict[int, dict[str, Any]]:
        qs = ItemResult.objects.filter(run=run, status=ResultStatus.OK).values(*fields)
        return {r["item_id"]: r for r in qs}

    base, cand = rows(base_run), rows(cand_run)
    common = sorted(set(base) & set(cand), key=lambda i: (base[i]["item__stem"], i))
    # Items both runs scored (IoU present); metric columns every such item carries (a run stores
    # all of them; a column missing on some item is left out of the report rather than the item).
    usable = [i for i in common if base[i]["iou"] is not None and cand[i]["iou"] is not None]
    metrics = [
        m
        for m in SORTABLE_METRICS
        if all(base[i][m] is not None and cand[i][m] is not None for i in usable)
    ]
    if not usable:
        from evalsite.releases.errors import ReleaseError

        raise ReleaseError(
            f"runs #{cand_run.pk} and #{base_run.pk} share no successfully scored item; "
            "nothing can be compared"
        )
    all_items = set(base) | set(cand)
    attributes, synthetic, revision = _attributes(cand_run, usable)
    return ReleaseInputs(
        candidate=report.candidate.ref, baseline=report.baseline.ref,
        dataset=report.dataset_version.spec,
        runs={"candidate": cand_run.pk, "baseline": base_run.pk},
        items=[{"id": i, "stem": base[i]["item__stem"]} for i in usable],
        baseline_metrics={m: np.array([base[i][m] for i in usable]) for m in metrics},
        candidate_metrics={m: np.array([cand[i][m] for i in usable]) for m in metrics},
        baseline_gated=np.array([base[i]["gated"] for i in usable], bool),
        candidate_gated=np.array([cand[i]["gated"] for i in usable], bool),
        no_subject=np.array([base[i]["item__size_bucket"] == "none" for i in usable], bool),
        latency={"candidate": latency_side(cand_run), "baseline": latency_side(base_run)},
        postprocess={"candidate": cand_run.postprocess or {},
                     "baseline": base_run.postprocess or {}},
        attributes=attributes, synthetic_labels=synthetic,
        tone_groups=report.dataset_version.dataset.skin_tone_groups,
        crowd=crowd_votes(report.campaign, candidate_run=cand_run.pk, baseline_run=base_run.pk),
        dropped=len(all_items) - len(usable),
        extra={"report": report.pk, "attribute_revision": revision,
               "campaign": report.campaign_id},
    )  # fmt: skip
