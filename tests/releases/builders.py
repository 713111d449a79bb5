"""Release test worlds: a set version with attribute labels and two finished runs whose per-image
results are written directly (no model, no worker), so a report builds in well under a second.

The baseline's IoU per image is drawn once; the candidate's is the baseline plus `gain` (plus a
little noise), except on the images of skin-tone group `degraded_group`, where it is the baseline
plus `loss`. Every other metric improves by `gain` (MAE drops), so only IoU carries the harm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from bench.support.seed import placeholder_item
from evalsite.datasets.models import AttributeRevision, Item, ItemAttribute
from evalsite.evals.models import SORTABLE_METRICS, EvalRun, ItemResult, RunStatus
from evalsite.releases.models import ReleaseReport
from evalsite.releases.services.reports import release_report_create
from models.models import CANDIDATE, PRODUCTION, Alias
from pipelines.payloads.run_summary import RUN_SUMMARY_VERSION, Counts, Gating, Latency, RunSummary
from tests.datasets.factories import DatasetVersionFactory
from tests.evals.factories import tiny_spec, version_row

TONE_GROUPS = {"1-3": (1, 3), "4-7": (4, 7), "8-10": (8, 10)}


@dataclass
class ReleaseWorld:
    version: Any
    baseline: EvalRun
    candidate: EvalRun
    items: list[Item]


def _summary(ious: np.ndarray, p50: float, p99: float) -> dict[str, Any]:
    means = {m: float(np.mean(ious)) for m in SORTABLE_METRICS}
    return RunSummary(
        version=RUN_SUMMARY_VERSION, metrics=means, ungated_metrics=means,
        counts=Counts(items=len(ious), ok=len(ious), failed=0, gated=0),
        gating=Gating(gated=0, no_subject_items=0, no_subject_gated=0,
                      subject_items=len(ious), subject_gated=0),
        latency=Latency(devices={"cpu": {"n": len(ious), "stages": {
            "total": {"p50": p50, "p90": p99, "p99": p99 if len(ious) >= 100 else None,
                      "max": p99, "mean": p50}}}}),
    ).to_dict()  # fmt: skip


def _run(mv: Any, dv: Any, ious: np.ndarray, items: list[Item], *, age: int, p99: float,
         postprocess: dict[str, Any] | None = None) -> EvalRun:  # fmt: skip
    run = EvalRun.objects.create(
        model_version=mv, dataset_version=dv, queue="torch", status=RunStatus.DONE,
        config_hash=f"cfg-{mv.version}-{dv.pk}", summary=_summary(ious, p99 / 2, p99),
        finished_at=timezone.now() - timedelta(minutes=age), device="cpu",
        postprocess=postprocess or {"gate_threshold": 0.5},
    )  # fmt: skip
    rows = []
    for item, iou in zip(items, ious, strict=True):
        values = {m: float(np.clip(iou, 0, 1)) for m in SORTABLE_METRICS}
        values["mae"] = float(np.clip(1.0 - iou, 0, 1) / 4)
        rows.append(ItemResult(run=run, item=item, status="ok", metrics=values, **values))
    ItemResult.objects.bulk_create(rows)
    return run


def _items(dv: Any, n: int) -> list[Item]:
    return Item.objects.bulk_create(
        placeholder_item(dv, f"img{k:03d}", image=f"x/{k}.png", image_sha256=f"{k:064d}",
                         web_overlay="wo.jpg", height=48)
        for k in range(n)
    )  # fmt: skip


def build_release_world(
    *, n: int = 90, gain: float = 0.05, loss: float | None = None,
    degraded_group: str = "8-10", seed: int = 0, family: str = "subject-lift",
    candidate_postprocess: dict[str, Any] | None = None,
) -> ReleaseWorld:  # fmt: skip
    rng = np.random.default_rng(seed)
    dv = DatasetVersionFactory(item_count=n)
    items = _items(dv, n)
    revision = AttributeRevision.objects.create(version=dv, number=1, source="synthetic")
    tones = [str(1 + k % 10) for k in range(n)]
    ItemAttribute.objects.bulk_create([
        ItemAttribute(revision=revision, item=item, skin_tone=tone,
                      perceived_gender="woman" if k % 2 else "man", source="synthetic")
        for k, (item, tone) in enumerate(zip(items, tones, strict=True))
    ])  # fmt: skip
    base_iou = rng.uniform(0.4, 0.8, n)
    lo, hi = TONE_GROUPS[degraded_group]
    in_group = np.array([lo <= int(t) <= hi for t in tones])
    change = np.where(in_group & (loss is not None), loss if loss is not None else 0.0, gain)
    cand_iou = base_iou + change + rng.normal(0, 0.01, n)
    base_mv = version_row(family, "1.0.0", fmt="torch_export", spec=tiny_spec())
    cand_mv = version_row(family, "1.1.0", fmt="torch_export", spec=tiny_spec())
    Alias.objects.create(family=base_mv.family, name=PRODUCTION, version=base_mv)
    Alias.objects.create(family=cand_mv.family, name=CANDIDATE, version=cand_mv)
    baseline = _run(base_mv, dv, base_iou, items, age=20, p99=40.0)
    candidate = _run(cand_mv, dv, cand_iou, items, age=10, p99=30.0,
                     postprocess=candidate_postprocess)  # fmt: skip
    return ReleaseWorld(dv, baseline, candidate, items)


def add_votes(world: ReleaseWorld, *, control: int, candidate_share: float,
              other: int = 0, seed: int = 0) -> Any:  # fmt: skip
    """A campaign over both runs with `control` control-stratum votes (the candidate wins about
    `candidate_share` of them, the rest split between losses, ties and both-bad) plus `other`
    disagreement votes, all from one annotator (no campaign report, so nobody is excluded)."""
    from ratings.models import Assignment, Campaign, Rating, Task
    from tests.evals.factories import user_with

    rng = np.random.default_rng(seed)
    campaign = Campaign.objects.create(name="release votes", dataset_version=world.version,
                                       status="open")  # fmt: skip
    campaign.runs.set([world.baseline, world.candidate])
    annotator = user_with("annotator", "voter")
    choices = rng.choice(
        ["cand", "base", "tie", "both_bad"], size=control + other,
        p=[candidate_share, (1 - candidate_share) * 0.6, (1 - candidate_share) * 0.3,
           (1 - candidate_share) * 0.1],
    )  # fmt: skip
    for k, choice in enumerate(choices):
        item = world.items[k % len(world.items)]
        cand_is_a = bool(k % 2)
        run_a, run_b = (world.candidate, world.baseline) if cand_is_a else (
            world.baseline, world.candidate)  # fmt: skip
        task = Task.objects.create(campaign=campaign, item=item, run_a=run_a, run_b=run_b,
                                   stratum="control" if k < control else "disagreement",
                                   order=k)  # fmt: skip
        a = Assignment.objects.create(task=task, campaign=campaign, annotator=annotator,
                                      left_is_a=True,
                                      leased_until=timezone.now() + timedelta(hours=1))  # fmt: skip
        if choice == "cand":
            outcome = "a" if cand_is_a else "b"
        elif choice == "base":
            outcome = "b" if cand_is_a else "a"
        else:
            outcome = str(choice)
        Rating.objects.create(assignment=a, task=task, campaign=campaign, annotator=annotator,
                              outcome=outcome, reasons=["edges"] if k % 3 == 0 else [])  # fmt: skip
    return campaign, choices


def add_set(world: ReleaseWorld, *, n: int = 40, gain: float = 0.05, seed: int = 1) -> ReleaseWorld:
    """A second set version (no person attributes) with a finished run of each of the world's
    two versions, for reports over a suite."""
    rng = np.random.default_rng(seed)
    dv = DatasetVersionFactory(item_count=n)
    items = _items(dv, n)
    base_iou = rng.uniform(0.4, 0.8, n)
    cand_iou = base_iou + gain + rng.normal(0, 0.01, n)
    baseline = _run(world.baseline.model_version, dv, base_iou, items, age=20, p99=40.0)
    candidate = _run(world.candidate.model_version, dv, cand_iou, items, age=10, p99=30.0)
    return ReleaseWorld(dv, baseline, candidate, items)


def newer_run(world: ReleaseWorld, side: str = "baseline") -> EvalRun:
    """A newer primary run of one side's version on the world's set (same numbers)."""
    old = getattr(world, side)
    ious = np.array(
        [r.iou for r in ItemResult.objects.filter(run=old).order_by("item__stem")], np.float64
    )
    items = sorted(world.items, key=lambda i: i.stem)
    return _run(old.model_version, world.version, ious, items, age=0, p99=30.0,
                postprocess=old.postprocess)  # fmt: skip


def world_report(world: ReleaseWorld, **kw: Any) -> ReleaseReport:
    """A release report of the world's candidate against its baseline on its set (`kw`: any
    other argument of `release_report_create`)."""
    args = {"candidate": world.candidate.model_version, "baseline": world.baseline.model_version,
            "dataset_versions": [world.version], **kw}  # fmt: skip
    return release_report_create(**args)
