"""`make demo` step of the ratings app: open a rating campaign over the demo runs.

The demo command calls `after_start(log)` of every app's `demo` module once a worker is live,
after the eval app's step has waited for its runs. Idempotent: a campaign over the same runs is
reused, so restarting the demo does not create another. The demo annotator then lands on real
tasks; the demo researcher / manager see the campaign page fill as they rate.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db.models import Count

from evalsite.datasets.models import DatasetVersion
from evalsite.evals.models import EvalRun, RunStatus
from ratings.models import Campaign
from ratings.services.campaigns import CampaignError, campaign_create
from ratings.services.reports import campaign_snapshot_mark_dirty

DEMO_ITEMS_PER_PAIR = 40  # a demo annotator session of a few minutes at k = 3
Log = Callable[[str], object]


def demo_runs() -> list[EvalRun]:
    """The newest finished default-config run per model version on the newest set version that
    has two or more of them."""
    done = EvalRun.objects.filter(status=RunStatus.DONE, is_default_config=True)
    versions = (
        DatasetVersion.objects.filter(eval_runs__in=done)
        .annotate(n=Count("eval_runs__model_version", distinct=True))
        .filter(n__gte=2)
        .order_by("-created_at", "-pk")
    )
    for version in versions[:1]:
        latest: dict[int, EvalRun] = {}
        for run in done.filter(dataset_version=version).order_by("-created_at", "-pk"):
            latest.setdefault(run.model_version_id, run)
        return sorted(latest.values(), key=lambda r: r.pk)
    return []


def after_start(log: Log) -> None:
    runs = demo_runs()
    if len(runs) < 2:
        log("==> rating campaign: fewer than two finished runs on one set; skipped")
        return
    ids = sorted(r.pk for r in runs)
    for campaign in Campaign.objects.filter(dataset_version=runs[0].dataset_version_id):
        if sorted(campaign.runs.values_list("pk", flat=True)) == ids:
            url = f"/rate/campaigns/{campaign.pk}/"
            campaign_snapshot_mark_dirty(campaign_id=campaign.pk)  # a report from this start
            log(f"==> rating campaign: reusing #{campaign.pk} ({campaign.status}) at {url}")
            return
    try:
        campaign = campaign_create(
            name="Demo: which cutout is better?",
            dataset_version=runs[0].dataset_version,
            runs=runs,
            items_per_pair=DEMO_ITEMS_PER_PAIR,
            open_now=True,
            instructions="Pick the cutout you would rather use: look at hair, hands and edges.",
        )
    except CampaignError as exc:
        log(f"==> rating campaign: not created ({exc})")
        return
    log(
        f"==> rating campaign #{campaign.pk} open: annotators rate at /rate/, results at "
        f"/rate/campaigns/{campaign.pk}/ (the report is recomputed "
        f"{settings.RATINGS_SNAPSHOT_DEBOUNCE_SECONDS:g} s after ratings arrive, or on "
        "'Recompute now')"
    )
