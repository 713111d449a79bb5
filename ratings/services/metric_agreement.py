"""Which metric predicts people, per campaign: the snapshot's `metric_agreement` section.

The statistics (people's side of a task, a metric's side, abstentions, the bootstrap) are
`pipelines.stats.metric_agreement`; this module reads each task's per-side metric values and
hands them over. The unit is a rated non-gold task (an item under a pair of runs; in an
instance-lift campaign one selected ground-truth instance), with the votes the campaign report
keeps (QC-excluded raters left out when the campaign says so).

Metric values per side:
* whole-image campaigns: every stored per-image metric of the registry that is not an instance
  metric (IoU, boundary IoU, SAD, ... : `ItemResult` columns), the run's value on the item;
* instance-lift campaigns: the selected instance's IoU and Boundary IoU with the instance the run
  matched to it (0 when the run missed it, as the instance metrics count a miss) — the
  per-instance values of `instance_iou` / `instance_boundary_iou`.

Section shape (stored in the snapshot payload, read by the campaign page, the release report and
the leaderboard):

    {rule, unit, decided, undecided, rounds, level, best: name | null, sentence,
     table: [MetricAgreement.as_dict() + label, direction],   (ranked, best first)
     codes: {metric: [2 agree | 1 abstain | 0 disagree per decided task]},  (computed here;
            stored apart, in CampaignSnapshot.agreement_codes, for family pooling)
     gallery: [{task, item, item_id, stem, a, a_id, b, b_id, instance, instance_a, instance_b,
                votes: {a, b, tie, both_bad}, people, metric, value_a, value_b,
                file_a, file_b (evals:file roles; null = the run missed the instance)}]}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalsite.evals.models import ItemResult
from pipelines.metrics.registry import BY_NAME, label, stored_metrics
from pipelines.payloads.campaign import AgreementRow, PeopleMetrics
from pipelines.stats.campaign import TaskTable
from pipelines.stats.metric_agreement import (
    agreement_table,
    codes_unpack,
    disagreements,
    item_codes,
    metric_side,
    people_side,
    pool_codes,
    sentence,
)
from ratings.models import Campaign, CampaignSnapshot, Mode, Task

#: Items in the campaign page's gallery of the best metric's strongest disagreements with people.
GALLERY_ITEMS = 12
INSTANCE_METRICS = ("instance_iou", "instance_boundary_iou")
RULE = (
    "People's side of an item = the side with more decisive votes (tie and both-bad votes count "
    "for neither; equal counts = not decided, left out). A metric's side = its better value in "
    "its direction; equal or missing values = the metric abstains and earns half a point. "
    "Share = (agreements + ½ abstentions) / decided items; 95 % percentile bootstrap over "
    "items, one shared draw for all metrics."
)


def _whole_image_metrics() -> list[str]:
    return [m.name for m in stored_metrics() if not m.instances and m.column]


def _image_values(
    rows: list[tuple[int, int, int, int]], metrics: list[str], version_id: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """rows = (item, run_a, run_b, instance): each side's stored per-image value per metric."""
    runs = {r for _, a, b, _ in rows for r in (a, b)}
    columns = [BY_NAME[m].column or m for m in metrics]
    # The campaign's set, not its items one by one: a large campaign's item list exceeds the
    # database's bound-parameter limit (SQLite 250 000 here, PostgreSQL 65 535).
    stored = {
        (run, item): vals
        for run, item, *vals in ItemResult.objects.filter(
            run_id__in=runs, item__version_id=version_id
        ).values_list("run_id", "item_id", *columns)
    }

    def side(run: int, item: int, k: int) -> float:
        v = stored.get((run, item))
        return np.nan if v is None or v[k] is None else float(v[k])

    return {
        m: (
            np.asarray([side(a, i, k) for i, a, _, _ in rows], dtype=np.float64),
            np.asarray([side(b, i, k) for i, _, b, _ in rows], dtype=np.float64),
        )
        for k, m in enumerate(metrics)
    }


def _instance_values(
    rows: list[tuple[int, int, int, int]], version_id: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    runs = {r for _, a, b, _ in rows for r in (a, b)}
    pairs: dict[tuple[int, int], dict[int, dict[str, Any]]] = {}
    for run, item, scores in ItemResult.objects.filter(
        run_id__in=runs, item__version_id=version_id
    ).values_list("run_id", "item_id", "instance_scores"):
        if int((scores or {}).get("gt_count") or 0):
            pairs[run, item] = {int(p["gt"]): p for p in scores.get("pairs") or []}

    def side(run: int, item: int, k: int, key: str) -> float:
        if (run, item) not in pairs:
            return np.nan  # not scored: the metric abstains
        p = pairs[run, item].get(k)
        return 0.0 if p is None else float(p.get(key) or 0.0)

    keys = {"instance_iou": "iou", "instance_boundary_iou": "boundary_iou"}
    return {
        m: (
            np.asarray([side(a, i, k, keys[m]) for i, a, _, k in rows], dtype=np.float64),
            np.asarray([side(b, i, k, keys[m]) for i, _, b, k in rows], dtype=np.float64),
        )
        for m in INSTANCE_METRICS
    }


def _file_role(instance: int, matched: int | None) -> str | None:
    """The run file (evals:file role) that shows a side: its cutout, its matched instance's web
    crop, or None when it missed the selected instance."""
    if not instance:
        return "web_cutout"
    return None if matched is None else f"instance_web-{matched}"


def metric_agreement_section(
    *,
    campaign: Campaign,
    table: TaskTable,
    names: list[str],
    ids: list[int],
    rounds: int,
) -> dict[str, Any]:
    """The section (shape in the module docstring) over the kept votes of `table`."""
    a_votes, b_votes = table.counts[:, 0], table.counts[:, 1]
    people = people_side(a_votes.astype(np.int64), b_votes.astype(np.int64))
    fields = ("pk", "item_id", "run_a_id", "run_b_id", "instance", "item__stem", "instance_a",
              "instance_b")  # fmt: skip
    # Every task of the campaign rather than the table's ids one by one (see _image_values).
    info = {
        pk: (item, a, b, k or 0, stem, ka, kb)
        for pk, item, a, b, k, stem, ka, kb in Task.objects.filter(campaign=campaign).values_list(
            *fields
        )
    }
    rows = [info[int(t)][:4] for t in table.task]
    instances = campaign.mode == Mode.INSTANCES
    metrics = list(INSTANCE_METRICS) if instances else _whole_image_metrics()
    version = campaign.dataset_version_id
    values = _instance_values(rows, version) if instances else _image_values(rows, metrics, version)
    sides = {
        m: metric_side(va, vb, lower_is_better=BY_NAME[m].lower_is_better)
        for m, (va, vb) in values.items()
    }
    codes = {m: item_codes(people, s) for m, s in sides.items()}
    ranked = [r.as_dict() for r in agreement_table(codes, rounds=rounds, seed=campaign.seed)]
    for r in ranked:
        r["label"] = label(r["metric"])
        r["direction"] = BY_NAME[r["metric"]].direction
    decided = int((people != 0).sum())
    best = ranked[0]["metric"] if ranked else None
    gallery = []
    if best is not None:
        va, vb = values[best]
        run_name = dict(zip(ids, names, strict=True))
        for i in disagreements(people, a_votes, b_votes, sides[best], va - vb,
                               limit=GALLERY_ITEMS):  # fmt: skip
            item, a, b, k, stem, ka, kb = info[int(table.task[i])]
            c = table.counts[i]
            gallery.append({
                "task": int(table.task[i]), "item_id": item, "stem": stem,
                "a": run_name.get(a, str(a)), "a_id": a, "b": run_name.get(b, str(b)), "b_id": b,
                "instance": k or None, "instance_a": ka, "instance_b": kb,
                "votes": {"a": int(c[0]), "b": int(c[1]), "tie": int(c[2]),
                          "both_bad": int(c[3])},
                "people": "a" if people[i] > 0 else "b",
                "metric": "a" if sides[best][i] > 0 else "b",
                "value_a": float(va[i]), "value_b": float(vb[i]),
                "file_a": _file_role(k, ka), "file_b": _file_role(k, kb),
            })  # fmt: skip
    return {
        "rule": RULE,
        "unit": "instance" if instances else "item",
        "decided": decided,
        "undecided": int(len(people) - decided),
        "rounds": rounds,
        "level": 0.95,
        "best": best,
        "sentence": sentence(ranked, {r["metric"]: r["label"] for r in ranked}),
        "table": ranked,
        "codes": {m: c.tolist() for m, c in codes.items()},
        "gallery": gallery,
    }


def family_metric_agreement(
    *, family: str, rounds: int = 1000, seed: int = 0
) -> dict[str, PeopleMetrics | None]:
    """Which metric predicts people across a family's campaigns, from their stored snapshots.

    A campaign belongs to the family when one of its runs is of one of the family's versions.
    Decided tasks are pooled (each campaign's stored codes, over the metrics every pooled
    campaign carries) and bootstrapped as one sample of items; whole-image and instance-lift
    campaigns are pooled apart, since they judge different things (`image` / `instances`).
    Reads snapshots only: what a campaign page shows is what is pooled here.
    """
    campaigns = (
        Campaign.objects.filter(runs__model_version__family__name=family)
        .filter(mode__in=[Mode.PAIRWISE, Mode.INSTANCES])
        .distinct()
        .order_by("pk")
    )
    modes = dict(campaigns.values_list("pk", "mode"))
    parts: dict[str, list[tuple[int, dict[str, Any]]]] = {"image": [], "instances": []}
    for campaign_id, payload, packed in CampaignSnapshot.objects.filter(
        campaign_id__in=list(modes), computed_at__isnull=False
    ).values_list("campaign_id", "payload", "agreement_codes"):
        section = (payload or {}).get("metric_agreement") or {}
        if section.get("decided"):
            key = "instances" if modes[campaign_id] == Mode.INSTANCES else "image"
            # Snapshots stored before the codes had their own column keep them in the section.
            codes = codes_unpack(packed) or section.get("codes") or {}
            parts[key].append((campaign_id, codes))
    out: dict[str, PeopleMetrics | None] = {}
    for key, found in parts.items():
        found.sort()
        pooled = pool_codes([codes for _, codes in found])
        ranked = [r.as_dict() for r in agreement_table(pooled, rounds=rounds, seed=seed)]
        for r in ranked:
            r["label"] = label(r["metric"])
            r["direction"] = BY_NAME[r["metric"]].direction
        out[key] = (
            PeopleMetrics(
                rule=RULE,
                decided=ranked[0]["n"],
                best=ranked[0]["metric"],
                sentence=sentence(ranked, {r["metric"]: r["label"] for r in ranked}),
                table=tuple(AgreementRow.from_dict(r) for r in ranked),
                family=family,
                campaigns=tuple(c for c, _ in found),
            )
            if ranked
            else None
        )
    return out
