"""Views of the ratings app: the annotator's page (annotate) and the campaign pages (campaigns)."""

from ratings.views.annotate import (
    image_view,
    lease_view,
    next_task,
    start_view,
    state_view,
    submit_view,
    votes_view,
)
from ratings.views.campaigns import (
    campaign_create_view,
    campaign_detail_view,
    campaign_export_view,
    campaign_list_view,
    campaign_recompute_view,
    campaign_status_view,
)

__all__ = [
    "campaign_create_view",
    "campaign_detail_view",
    "campaign_export_view",
    "campaign_list_view",
    "campaign_recompute_view",
    "campaign_status_view",
    "image_view",
    "lease_view",
    "next_task",
    "start_view",
    "state_view",
    "submit_view",
    "votes_view",
]
