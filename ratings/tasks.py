"""Celery tasks of ratings: recompute a campaign's stored report (thin: ids in, service call)."""

from __future__ import annotations

from celery import shared_task

from ratings.models import Campaign
from ratings.services.reports import campaign_snapshot_refresh, stale_snapshots


@shared_task(name="ratings.tasks.refresh_campaign_snapshot", acks_late=True, soft_time_limit=600)
def refresh_campaign_snapshot(campaign_id: int) -> str:
    """Recompute one campaign's report; a deleted campaign is nothing to do."""
    campaign = Campaign.objects.select_related("dataset_version__dataset").filter(pk=campaign_id)
    found = campaign.first()
    if found is None:
        return "no such campaign"
    snapshot = campaign_snapshot_refresh(campaign=found)
    return f"{snapshot.ratings_count} ratings in {snapshot.seconds:.2f} s"


@shared_task(name="ratings.tasks.refresh_dirty_snapshots", acks_late=True)
def refresh_dirty_snapshots() -> int:
    """Beat: re-send the recompute of reports left dirty too long (a lost message)."""
    ids = list(stale_snapshots().values_list("campaign_id", flat=True))
    for campaign_id in ids:
        refresh_campaign_snapshot.delay(campaign_id)
    return len(ids)
