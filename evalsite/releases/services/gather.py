"""Gather the arrays of a release report from the database (pairing, attributes, latency, votes).

Everything statistical happens in `pipelines.release`; this module only reads rows and lines them
up by item, so the report can be rebuilt from the same arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalsite.datasets.models import AttributeRevision, AttributeSource, ItemAttribute
from evalsite.evals.models import (
    EvalRun,
    RunSource,
    RunStatus,
)
from evalsite.evals.pairing import NothingToPair, paired_results
from evalsite.evals.summary import run_summary
from pipelines.release import CrowdVotes, ReleaseInputs

if TYPE_CHECKING:  # the report's campaign is a foreign key; its data is read through ratings
    from ratings.models import Campaign

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


def crowd_votes(
    campaign: Campaign | None, *, candidate_run: int, baseline_run: int
) -> CrowdVotes | None:
    """The campaign's votes on the two runs, from the ratings app (`ratings.services.votes`);
    None without a campaign."""
    if campaign is None:
        return None
    from ratings.services.votes import crowd_votes as campaign_votes

    return campaign_votes(campaign=campaign, candidate_run=candidate_run, baseline_run=baseline_run)


def gather(report: Any) -> list[ReleaseInputs]:
    """The inputs of every set version of the report's suite, in its order (quality set first).
    Crowd votes go with the set whose two runs the report's campaign compares."""
    sets = list(report.sets.select_related("dataset_version__dataset", "candidate_run",
                                           "baseline_run").order_by("position"))  # fmt: skip
    campaign = report.campaign
    crowd_set = None
    if campaign is not None:
        from ratings.selectors import campaign_run_ids

        compared = campaign_run_ids(campaign)
        crowd_set = next(
            (rs.pk for rs in sets if {rs.candidate_run_id, rs.baseline_run_id} <= compared), None
        )
    return [gather_set(report, rs, campaign if rs.pk == crowd_set else None) for rs in sets]


def gather_set(report: Any, report_set: Any, campaign: Campaign | None) -> ReleaseInputs:
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
