"""`make demo` step of the ratings app: a campaign over the pair the demo's release report
compares, seeded with votes from simulated raters.

The pair is `subject-lift:candidate` vs `subject-lift:production` (resolved through the aliases,
never hard-coded versions) on the `pascal-s-test` set: photos no candidate was trained, tuned or
selected on. The campaign is sized so that all three strata get items (gold reserved first from
the pair's gross failures, then 30 control and 30 disagreement) and so the release report's crowd
gate has enough control votes (GateSettings.min_votes).

Simulated raters (users in the `simulated` group, labelled "simulated" on every page and export):
3 scripted raters who prefer the cutout closer to the ground truth, and 2 random clickers for
quality control to catch; the rule and seed are in `pipelines.stats.simulated_raters`. Their votes
go through `rating_submit`, as a person's do. k leaves room on every task for people: the demo
annotator's own ratings add to the simulated ones.

A second campaign rates instance lifts on `synthetic-groups` (drawn groups of 2-4 people with
one mask per person): each task selects one person and shows the instance each run lifted for
them; the same simulated raters vote on it (the scripted rule reads the IoU of each side's lift
with the selected person). Both campaigns' pages rank the metrics by how often they agree with
the votes ("which metric predicts people").

Runs after the eval app's step has waited for its runs (apps run in INSTALLED_APPS order) and
before the release app's step. Idempotent: the campaign over the same two runs is reused and a
simulated rater is never served a task twice, so a second start adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import Count

from evalsite.datasets.errors import VersionSpecError
from evalsite.datasets.models import DatasetVersion
from evalsite.datasets.selectors import dataset_version_resolve
from evalsite.evals.models import EvalRun
from evalsite.evals.selectors import primary_run
from models.errors import VersionNotFound
from models.models import CANDIDATE, PRODUCTION
from models.selectors import model_version_resolve
from pipelines.stats.simulated_raters import DEFAULT_SEED
from ratings.models import Campaign, Mode, Stratum
from ratings.services.campaigns import CampaignError, campaign_create
from ratings.services.reports import campaign_snapshot_refresh
from ratings.services.simulated import simulated_rater_ensure, simulated_votes_seed

FAMILY = "subject-lift"
DEMO_SET = "pascal-s-test"
CAMPAIGN_NAME = "Demo: which cutout is better? (candidate vs production)"
SCRIPTED_RATERS = ("sim-rater-1", "sim-rater-2", "sim-rater-3")
RANDOM_CLICKERS = ("sim-clicker-1", "sim-clicker-2")
#: 30 control + 30 disagreement items; 3 scripted raters give 90 control votes (>= min_votes 50).
ITEMS_PER_PAIR = 60
DISAGREEMENT_SHARE = 0.5
#: Gold is 15 % of the pair's tasks (the top of CVAT's 5-15 % band), up to 11 next to 60 plain
#: tasks; reserved first, so all of the pair's gross failures (about ten on the 100 photos) can
#: become gold.
GOLD_RATIO = 0.15
#: Scored gold ratings needed to flag: the pair's few gross failures cap gold near 10, and at 5 a
#: random clicker (gold accuracy ~1/3) still passes 0.7 with probability under 5 %.
MIN_GOLD = 5
#: Every simulated rater rates every task; two slots per task are left for people.
OVERLAP = len(SCRIPTED_RATERS) + len(RANDOM_CLICKERS) + 2
CAMPAIGN_SEED = 0
INSTANCE_SET = "synthetic-groups"
INSTANCE_CAMPAIGN_NAME = "Demo: which lift of the selected person is better? (instances)"
#: The 12 groups hold about 35 people: all of them are rated (gold reserved first).
INSTANCE_ITEMS = 40

Log = Callable[[str], object]


def demo_pair(set_name: str = DEMO_SET) -> tuple[DatasetVersion, EvalRun, EvalRun] | str:
    """(set version, candidate run, production run), or why there is none yet."""
    try:
        candidate = model_version_resolve(f"{FAMILY}:{CANDIDATE}")
        production = model_version_resolve(f"{FAMILY}:{PRODUCTION}")
        dataset_version = dataset_version_resolve(set_name)
    except (VersionNotFound, VersionSpecError) as exc:
        return str(exc)
    if candidate.pk == production.pk:
        return f"{candidate.ref} is both candidate and production"
    runs = [
        primary_run(model_version=v, dataset_version=dataset_version)
        for v in (candidate, production)
    ]
    if runs[0] is None or runs[1] is None:
        return f"{candidate.ref} or {production.ref} has no finished run on {dataset_version.spec}"
    return dataset_version, runs[0], runs[1]


def demo_campaign(
    dataset_version: DatasetVersion, runs: list[EvalRun], mode: str = Mode.PAIRWISE
) -> Campaign | None:
    """The campaign over exactly these runs on the set version, if the demo made one before."""
    ids = sorted(r.pk for r in runs)
    campaigns = (
        Campaign.objects.filter(dataset_version=dataset_version, mode=mode)
        .annotate(n=Count("runs"))
        .filter(n=len(ids))
        .order_by("pk")
    )
    for campaign in campaigns:
        if sorted(campaign.runs.values_list("pk", flat=True)) == ids:
            return campaign
    return None


def after_start(log: Log) -> None:
    scripted = [simulated_rater_ensure(username=name) for name in SCRIPTED_RATERS]
    clickers = [simulated_rater_ensure(username=name) for name in RANDOM_CLICKERS]
    whole_image_campaign_step(log, scripted, clickers)
    instance_campaign_step(log, scripted, clickers)


def _campaign_ready(
    log: Log, what: str, *, set_name: str, mode: str, name: str, items_per_pair: int,
    instructions: str,
) -> Campaign | None:  # fmt: skip
    """The demo's `what` campaign, candidate vs production on `set_name`: the one made before,
    else a new open one; None (the log says why) while there is no pair or it cannot be made."""
    pair = demo_pair(set_name)
    if isinstance(pair, str):
        log(f"==> {what} campaign: skipped ({pair})")
        return None
    dataset_version, candidate_run, production_run = pair
    runs = [candidate_run, production_run]
    campaign = demo_campaign(dataset_version, runs, mode)
    if campaign is not None:
        log(f"==> {what} campaign: reusing #{campaign.pk} ({campaign.status})")
        return campaign
    try:
        campaign = campaign_create(
            name=name, dataset_version=dataset_version, runs=runs, mode=mode, overlap=OVERLAP,
            items_per_pair=items_per_pair, disagreement_share=DISAGREEMENT_SHARE,
            gold_ratio=GOLD_RATIO, min_gold=MIN_GOLD, seed=CAMPAIGN_SEED, open_now=True,
            instructions=instructions,
        )  # fmt: skip
    except CampaignError as exc:
        log(f"==> {what} campaign: not created ({exc})")
        return None
    log(f"==> {what} campaign #{campaign.pk} open: {candidate_run.model_version.ref} vs "
        f"{production_run.model_version.ref} on {dataset_version.spec}")  # fmt: skip
    return campaign


def whole_image_campaign_step(log: Log, scripted: list[Any], clickers: list[Any]) -> None:
    campaign = _campaign_ready(
        log, "rating", set_name=DEMO_SET, mode=Mode.PAIRWISE, name=CAMPAIGN_NAME,
        items_per_pair=ITEMS_PER_PAIR,
        instructions="Pick the cutout you would rather use: look at hair, hands and edges.",
    )  # fmt: skip
    if campaign is None:
        return
    strata = dict(
        campaign.tasks.values_list("stratum").annotate(n=Count("pk")).values_list("stratum", "n")
    )
    log("    strata: " + ", ".join(f"{s} {strata.get(s, 0)}" for s in Stratum.values))
    gold = strata.get(Stratum.GOLD, 0)
    if gold < campaign.min_gold:
        log(f"    note: {gold} gold tasks, fewer than the {campaign.min_gold} scored gold ratings "
            "QC needs to flag anyone")  # fmt: skip
    seeded = simulated_votes_seed(
        campaign=campaign, scripted=scripted, clickers=clickers, seed=DEFAULT_SEED
    )
    # Computed here, not after the debounce: the release report's step reads which annotators
    # QC excludes from this snapshot right after.
    snapshot = campaign_snapshot_refresh(campaign=campaign)
    payload = snapshot.payload
    qc = payload.get("qc") or {}
    flagged = qc.get("flagged") or []
    log(
        f"    gold: {qc.get('gold_tasks', 0)} tasks, "
        + ("insufficient for QC" if qc.get("insufficient_gold") else "enough for QC")
        + f"; quality control flags {len(flagged)} rater(s): {', '.join(flagged) or 'none'}"
    )
    habits = payload.get("habits") or {}
    log(f"    side bias: {(habits.get('side') or {}).get('text', 'not computed')}")
    review = (habits.get("improbable") or {}).get("flagged") or []
    log(f"    improbable under the consensus (for review): {', '.join(review) or 'none'}")
    for pair in (payload.get("sequential") or {}).get("pairs") or []:
        log(f"    decision: {pair['text']}")
    log(f"    which metric predicts people: {_agreement_text(payload)}")
    log(
        f"    {seeded.added} simulated votes added ({len(scripted)} scripted raters, "
        f"{len(clickers)} random clickers; labelled 'simulated'); annotators rate at /rate/, "
        f"results at /rate/campaigns/{campaign.pk}/ (recomputed "
        f"{settings.RATINGS_SNAPSHOT_DEBOUNCE_SECONDS:g} s after ratings arrive)"
    )


def _agreement_text(payload: dict[str, Any]) -> str:
    return str((payload.get("metric_agreement") or {}).get("sentence") or "not computed")


def instance_campaign_step(log: Log, scripted: list[Any], clickers: list[Any]) -> None:
    """The instance-lift campaign on the groups set, seeded with the same simulated raters."""
    campaign = _campaign_ready(
        log, "instance-lift", set_name=INSTANCE_SET, mode=Mode.INSTANCES,
        name=INSTANCE_CAMPAIGN_NAME, items_per_pair=INSTANCE_ITEMS,
        instructions="One person is outlined in the photo: pick the side that lifted "
        "that person better (whole person, clean edges, nobody else).",
    )  # fmt: skip
    if campaign is None:
        return
    seeded = simulated_votes_seed(
        campaign=campaign, scripted=scripted, clickers=clickers, seed=DEFAULT_SEED
    )
    payload = campaign_snapshot_refresh(campaign=campaign).payload
    log(f"    {campaign.tasks.count()} instance tasks, {seeded.added} simulated votes added; "
        f"which metric predicts people: {_agreement_text(payload)}; "
        f"results at /rate/campaigns/{campaign.pk}/")  # fmt: skip
