"""Tasks of an instance-lift campaign: one ground-truth instance of an item under a pair of runs.

What a task shows: the photo with ground-truth instance k selected (the way a user taps a
subject) and, side by side, the instance each run lifted for it — the predicted instance that
`pipelines.metrics.instances` matched to k (one-to-one at IoU >= 0.5), read from the run's stored
`ItemResult.instance_scores`; a run that missed k shows "no subject" on its side. The lifted
instance cutouts already exist at web size (the runner writes `web/<stem>.instance-N.png` per
predicted instance, `artefacts["instances"]`), so nothing is generated at creation; the selected-
instance photo is drawn when the page asks for it (`pipelines.postprocess.highlight`), from the
item's web copy and its instance mask, without writing anything.

The strata are the whole-image ones with instance numbers in place of the image's: gold = one
side's IoU on the instance at least `GOLD_MARGIN` above the other's and the worse below
`GOLD_WORSE_BELOW` (a missed instance scores 0), reserved first; control = a uniform draw of what
is left; disagreement = the largest |IoU a − IoU b| on the instance (the stored scores hold each
predicted instance's IoU with the ground truth, not the two predictions' overlap, so their gap
is the disagreement measure they give).
"""

from __future__ import annotations

import numpy as np

from evalsite.evals.models import EvalRun, ItemResult, ResultStatus
from pipelines.metrics.instances import Lift, lifts
from ratings.models import Stratum, Task, gold_count, gold_winner


def instance_lifts(run: EvalRun) -> dict[tuple[int, int], Lift]:
    """(item, ground-truth instance k) → the run's lift, for items scored with instance masks."""
    rows = ItemResult.objects.filter(run=run, status=ResultStatus.OK).values_list(
        "item_id", "instance_scores", "artefacts"
    )
    out: dict[tuple[int, int], Lift] = {}
    for item, scores, artefacts in rows:
        gt_count = int((scores or {}).get("gt_count") or 0)
        if not gt_count or not (artefacts or {}).get("alpha"):
            continue
        cutouts = len((artefacts or {}).get("instances") or [])
        for k, lift in lifts(scores or {}, cutouts).items():
            out[item, k] = lift
    return out


def instance_pair_tasks(
    a: EvalRun,
    b: EvalRun,
    la: dict[tuple[int, int], Lift],
    lb: dict[tuple[int, int], Lift],
    *,
    budget: int,
    share: float,
    gold_ratio: float,
    rng: np.random.Generator,
) -> list[Task]:
    """The pair's tasks over (item, instance) units both runs scored (same order of strata and
    draws as whole-image tasks: gold first, then control, then disagreement)."""
    common = sorted(set(la) & set(lb))
    gold_pool = [u for u in common if gold_winner(la[u].iou, lb[u].iou)]
    n_gold = min(len(gold_pool), gold_count(min(budget, len(common)), gold_ratio))
    gold = (sorted(gold_pool[i] for i in rng.choice(len(gold_pool), n_gold, replace=False))
            if n_gold else [])  # fmt: skip
    chosen = set(gold)
    free = [u for u in common if u not in chosen]
    n = min(budget, len(free))
    n_dis = round(n * share)
    control = {free[i] for i in rng.choice(len(free), n - n_dis, replace=False)} if free else set()
    div = {u: abs(la[u].iou - lb[u].iou) for u in common}
    rest = sorted((u for u in free if u not in control), key=lambda u: (-div[u], u))

    def task(unit: tuple[int, int], stratum: str) -> Task:
        item, k = unit
        winner = ""
        if stratum == Stratum.GOLD:
            winner = gold_winner(la[unit].iou, lb[unit].iou)
        return Task(item_id=item, run_a=a, run_b=b, stratum=stratum, divergence=div[unit],
                    iou_a=la[unit].iou, iou_b=lb[unit].iou, order=0, gold_winner=winner,
                    instance=k, instance_a=la[unit].pred, instance_b=lb[unit].pred)  # fmt: skip

    return (
        [task(u, Stratum.CONTROL) for u in sorted(control)]
        + [task(u, Stratum.DISAGREEMENT) for u in rest[:n_dis]]
        + [task(u, Stratum.GOLD) for u in gold]
    )
