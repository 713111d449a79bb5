"""Creating, opening and closing campaigns; choosing their items (strata) at creation.

Why three strata: the disagreement stratum spends the budget where the runs' outputs differ most
(1 − IoU between their masks), which is where humans learn something, but it is a biased sample;
the control stratum is a uniform random sample drawn FIRST from all common items, so its scores are
the unbiased headline; gold tasks are gross failures only (one output's IoU with ground truth at
least GOLD_MARGIN above the other's and the worse below GOLD_WORSE_BELOW), whose better side is the
known right answer used to check annotators, never to score runs. Order: gold FIRST (a share of
the pair's tasks within CVAT's 5-15 % guidance, from the pair's gross failures: picked after
control, they were often all gone and QC could never score anyone), then control (uniform over
what gold left), then disagreement from what is left.

A campaign either runs its fixed plan (every task gets k votes) or runs "until decided": each pair
stops being served once its anytime-valid sequence decides, and the campaign stops at its vote
budget (`ratings.services.sequential`, `ratings.services.assign`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from django.contrib.auth.models import User
from django.db import transaction
from PIL import Image

from evalsite.datasets.models import DatasetVersion
from evalsite.evals.models import EvalRun, ItemResult, ResultStatus, RunStatus
from evalsite.evals.services.artefacts import run_file
from pipelines.masks import pred_foreground
from pipelines.metrics.functional import mask_iou
from ratings.models import (
    GOLD_SHARE_BAND,
    MAX_ITEMS_PER_PAIR,
    Campaign,
    CampaignStatus,
    Mode,
    Stopping,
    Stratum,
    Task,
    gold_count,
    gold_winner,
    is_pairwise,
)
from ratings.services.instance_tasks import instance_lifts, instance_pair_tasks
from ratings.services.reports import campaign_snapshot_mark_dirty

#: A budget above this is a typo (a paid crowd never casts ten million votes on one campaign), and
#: would not fit the database column.
MAX_VOTE_BUDGET = 10_000_000


class CampaignError(ValueError):
    """A campaign that cannot be created as asked; the message says which field and why."""


@dataclass(frozen=True)
class _Result:
    iou: float | None
    alpha: str


def _results(run: EvalRun) -> dict[int, _Result]:
    rows = ItemResult.objects.filter(run=run, status=ResultStatus.OK).values_list(
        "item_id", "iou", "artefacts"
    )
    return {
        item: _Result(iou, str((art or {}).get("alpha", "")))
        for item, iou, art in rows
        if (art or {}).get("alpha")
    }


class _Masks:
    """Binarised alpha masks read once per (run, item) across all pairs."""

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray | None] = {}

    def get(self, rel: str) -> np.ndarray | None:
        if rel not in self._cache:
            try:
                with Image.open(run_file(rel)) as img:
                    self._cache[rel] = pred_foreground(np.asarray(img.convert("L")))
            except (OSError, ValueError):
                self._cache[rel] = None
        return self._cache[rel]

    def divergence(self, a: str, b: str) -> float:
        """1 − IoU of the two masks; two empty masks agree (IoU 1); unreadable = most divergent."""
        ma, mb = self.get(a), self.get(b)
        if ma is None or mb is None or ma.shape != mb.shape:
            return 1.0
        return 1.0 - mask_iou(ma, mb)


def _is_gross_failure(a: _Result, b: _Result) -> str:
    """'a' or 'b' (the better run) when the pair is a gross failure, else ''."""
    if a.iou is None or b.iou is None:
        return ""
    return gold_winner(a.iou, b.iou)


def _validate(
    *,
    name: str,
    dataset_version: DatasetVersion,
    runs: Sequence[EvalRun],
    overlap: int,
    disagreement_share: float,
    gold_ratio: float,
    items_per_pair: int,
    mode: str,
    stopping: str = Stopping.FIXED,
    vote_budget: int | None = None,
    alpha: float = 0.05,
    margin: float | None = None,
) -> None:
    if not name.strip():
        raise CampaignError("name: give the campaign a name")
    if len({r.pk for r in runs}) < 2:
        raise CampaignError("runs: pick two or more different runs")
    for run in runs:
        if run.dataset_version_id != dataset_version.pk:
            raise CampaignError(f"runs: run #{run.pk} is on another set version")
        if run.status != RunStatus.DONE:
            raise CampaignError(f"runs: run #{run.pk} is {run.status}, not done")
    if overlap < 1:
        raise CampaignError("overlap: k must be at least 1")
    if not 0.0 <= disagreement_share <= 1.0:
        raise CampaignError("disagreement_share: must be between 0 and 1")
    low, high = GOLD_SHARE_BAND
    if gold_ratio != 0.0 and not low <= gold_ratio <= high:
        raise CampaignError(
            f"gold_ratio: the gold share of tasks must be 0 (no gold) or between {low:g} and "
            f"{high:g} (CVAT's guidance: 5-15 % of tasks)"
        )
    if not 1 <= items_per_pair <= MAX_ITEMS_PER_PAIR:
        raise CampaignError(f"items_per_pair: must be from 1 to {MAX_ITEMS_PER_PAIR}")
    if mode not in (Mode.PAIRWISE, Mode.ABSOLUTE, Mode.INSTANCES):  # attributes: own page
        raise CampaignError(
            "mode: must be pairwise, instances or absolute (attribute labelling campaigns "
            "are created on their own page)"
        )
    if mode == Mode.INSTANCES and not dataset_version.items.exclude(instances=[]).exists():
        raise CampaignError(
            f"mode: {dataset_version.spec} has no instance masks, so there is no instance to "
            "select; pick a set imported with one mask per subject"
        )
    _validate_stopping(
        mode=mode, stopping=stopping, vote_budget=vote_budget, alpha=alpha, margin=margin
    )


def _validate_stopping(
    *, mode: str, stopping: str, vote_budget: int | None, alpha: float, margin: float | None
) -> None:
    if stopping not in Stopping.values:
        raise CampaignError(f"stopping: must be one of {', '.join(Stopping.values)}")
    if stopping == Stopping.UNTIL_DECIDED and not is_pairwise(mode):
        raise CampaignError("stopping: until decided needs a pairwise or instances campaign")
    if vote_budget is not None and not 1 <= vote_budget <= MAX_VOTE_BUDGET:
        raise CampaignError(f"vote_budget: must be from 1 to {MAX_VOTE_BUDGET} votes")
    if vote_budget is not None and stopping != Stopping.UNTIL_DECIDED:
        raise CampaignError("vote_budget: only an until-decided campaign has a vote budget")
    if not (isinstance(alpha, int | float) and 0.0 < alpha <= 0.5):
        raise CampaignError("alpha: the error level must be above 0 and at most 0.5")
    if margin is not None and not 0.0 < margin < 0.5:
        raise CampaignError("margin: the equivalence margin on the win rate must be in (0, 0.5)")


def _pair_tasks(
    a: EvalRun,
    b: EvalRun,
    ra: dict[int, _Result],
    rb: dict[int, _Result],
    *,
    masks: _Masks,
    budget: int,
    share: float,
    gold_ratio: float,
    rng: np.random.Generator,
) -> list[Task]:
    common = sorted(set(ra) & set(rb))
    # Gold is reserved first: a pair's gross failures are few, and drawn after control and the
    # disagreement pick (which prefers them: they are the most divergent items) none were left.
    gold_pool = [i for i in common if _is_gross_failure(ra[i], rb[i])]
    gold = _gold_pick(gold_pool, n_plain=min(budget, len(common)), share=gold_ratio, rng=rng)
    chosen = set(gold)
    free = [i for i in common if i not in chosen]
    n = min(budget, len(free))
    n_dis = round(n * share)
    control = set(rng.choice(free, n - n_dis, replace=False).tolist()) if free else set()
    div = {i: masks.divergence(ra[i].alpha, rb[i].alpha) for i in common}
    rest = sorted((i for i in free if i not in control), key=lambda i: (-div[i], i))
    disagreement = rest[:n_dis]

    def task(item: int, stratum: str) -> Task:
        return Task(
            item_id=item,
            run_a=a,
            run_b=b,
            stratum=stratum,
            divergence=div[item],
            iou_a=ra[item].iou,
            iou_b=rb[item].iou,
            order=0,
            gold_winner=_is_gross_failure(ra[item], rb[item]) if stratum == Stratum.GOLD else "",
        )

    return (
        [task(i, Stratum.CONTROL) for i in sorted(control)]
        + [task(i, Stratum.DISAGREEMENT) for i in disagreement]
        + [task(i, Stratum.GOLD) for i in gold]
    )


def _gold_pick(
    pool: list[int], *, n_plain: int, share: float, rng: np.random.Generator
) -> list[int]:
    n_gold = min(len(pool), gold_count(n_plain, share))
    return sorted(rng.choice(pool, n_gold, replace=False).tolist()) if n_gold else []


def _absolute_tasks(
    runs: Sequence[EvalRun],
    results: dict[int, dict[int, _Result]],
    *,
    masks: _Masks,
    budget: int,
    share: float,
    rng: np.random.Generator,
) -> list[Task]:
    """Absolute mode: one task per (item, run); an item's divergence is its largest over pairs."""
    common = sorted(set.intersection(*(set(results[r.pk]) for r in runs)))
    div = {
        i: max(
            masks.divergence(results[a.pk][i].alpha, results[b.pk][i].alpha)
            for a, b in combinations(runs, 2)
        )
        for i in common
    }
    n = min(budget, len(common))
    n_dis = round(n * share)
    control = set(rng.choice(common, n - n_dis, replace=False).tolist()) if common else set()
    rest = sorted((i for i in common if i not in control), key=lambda i: (-div[i], i))
    chosen = [(i, Stratum.CONTROL) for i in sorted(control)]
    chosen += [(i, Stratum.DISAGREEMENT) for i in rest[:n_dis]]
    return [
        Task(
            item_id=i,
            run_a=run,
            stratum=s,
            divergence=div[i],
            iou_a=results[run.pk][i].iou,
            order=0,
        )
        for i, s in chosen
        for run in runs
    ]


def campaign_create(
    *,
    name: str,
    dataset_version: DatasetVersion,
    runs: Sequence[EvalRun],
    user: User | None = None,
    mode: str = Mode.PAIRWISE,
    overlap: int = 3,
    items_per_pair: int = 100,
    disagreement_share: float = 0.5,
    gold_ratio: float = 0.1,
    instructions: str = "",
    reference_run: EvalRun | None = None,
    seed: int = 0,
    open_now: bool = False,
    lease_seconds: int | None = None,
    min_gold: int | None = None,
    stopping: str = Stopping.FIXED,
    vote_budget: int | None = None,
    alpha: float = 0.05,
    margin: float | None = None,
) -> Campaign:
    """Create a campaign and its tasks in one transaction (a half-built campaign never shows)."""
    runs = sorted(runs, key=lambda r: r.pk)
    _validate(
        name=name,
        dataset_version=dataset_version,
        runs=runs,
        overlap=overlap,
        mode=mode,
        disagreement_share=disagreement_share,
        gold_ratio=gold_ratio,
        items_per_pair=items_per_pair,
        stopping=stopping,
        vote_budget=vote_budget,
        alpha=alpha,
        margin=margin,
    )
    if min_gold is not None and min_gold < 1:
        raise CampaignError("min_gold: scored gold ratings needed to flag must be at least 1")
    if reference_run is not None and reference_run.pk not in {r.pk for r in runs}:
        raise CampaignError("reference_run: must be one of the campaign's runs")
    rng = np.random.default_rng(seed)
    masks = _Masks()
    results = {r.pk: _results(r) for r in runs} if mode != Mode.INSTANCES else {}
    if mode == Mode.INSTANCES:
        lifts = {r.pk: instance_lifts(r) for r in runs}
        tasks = []
        for a, b in combinations(runs, 2):
            tasks += instance_pair_tasks(
                a, b, lifts[a.pk], lifts[b.pk], budget=items_per_pair, share=disagreement_share,
                gold_ratio=gold_ratio, rng=rng,
            )  # fmt: skip
    elif mode == Mode.PAIRWISE:
        tasks = []
        for a, b in combinations(runs, 2):
            tasks += _pair_tasks(
                a,
                b,
                results[a.pk],
                results[b.pk],
                masks=masks,
                budget=items_per_pair,
                share=disagreement_share,
                gold_ratio=gold_ratio,
                rng=rng,
            )
    else:
        tasks = _absolute_tasks(
            runs, results, masks=masks, budget=items_per_pair, share=disagreement_share, rng=rng
        )
    if not [t for t in tasks if t.stratum != Stratum.GOLD]:
        raise CampaignError(
            "runs: the runs have no instance of a successfully evaluated item in common"
            if mode == Mode.INSTANCES
            else "runs: the runs have no successfully evaluated item in common"
        )
    for position, index in enumerate(rng.permutation(len(tasks)).tolist()):
        tasks[index].order = position
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name.strip(),
            dataset_version=dataset_version,
            mode=mode,
            overlap=overlap,
            items_per_pair=items_per_pair,
            disagreement_share=disagreement_share,
            gold_ratio=gold_ratio if is_pairwise(mode) else 0.0,
            instructions=instructions,
            reference_run=reference_run or _production_run(runs) or runs[0],
            seed=seed,
            stopping=stopping,
            vote_budget=vote_budget,
            alpha=alpha,
            margin=margin,
            status=CampaignStatus.OPEN if open_now else CampaignStatus.DRAFT,
            created_by=user,
            **({"lease_seconds": lease_seconds} if lease_seconds else {}),
            **({"min_gold": min_gold} if min_gold is not None else {}),
        )
        campaign.runs.set(runs)
        for t in tasks:
            t.campaign = campaign
        Task.objects.bulk_create(tasks, batch_size=500)
        campaign_snapshot_mark_dirty(campaign_id=campaign.pk)
    return campaign


def _production_run(runs: Sequence[EvalRun]) -> EvalRun | None:
    from models.models import PRODUCTION, Alias

    prod = set(
        Alias.objects.filter(
            name=PRODUCTION, version__in=[r.model_version_id for r in runs]
        ).values_list("version_id", flat=True)
    )
    return next((r for r in runs if r.model_version_id in prod), None)


def campaign_set_status(*, campaign: Campaign, status: str) -> Campaign:
    """Open or close a campaign; closing keeps every rating (late submits still land)."""
    if status not in CampaignStatus.values:
        raise CampaignError(f"status: must be one of {CampaignStatus.values}")
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.status = status
    return campaign


def campaign_set_exclusion(*, campaign: Campaign, exclude_flagged: bool) -> Campaign:
    """Switch whether flagged annotators' ratings count in the scores (QC toggle)."""
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(exclude_flagged=exclude_flagged)
        campaign_snapshot_mark_dirty(campaign_id=campaign.pk)
    campaign.exclude_flagged = exclude_flagged
    return campaign
