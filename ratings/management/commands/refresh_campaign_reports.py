"""`manage.py refresh_campaign_reports [ID …] [--dirty]`: recompute stored campaign reports now.

Without arguments every campaign is recomputed; `--dirty` only those with ratings newer than
their report. Prints one line per campaign; exit 1 when a given id names no campaign.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipelines import cli_args
from ratings.models import Campaign
from ratings.services.reports import campaign_snapshot_refresh


class Command(BaseCommand):
    help = "Recompute the stored report (snapshot) of campaigns now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "ids", nargs="*", type=cli_args.record_id, metavar="ID", help="campaign ids"
        )
        parser.add_argument("--dirty", action="store_true", help="only reports with new ratings")

    def handle(self, *args: Any, **options: Any) -> None:
        campaigns = Campaign.objects.select_related("dataset_version__dataset").order_by("pk")
        ids: list[int] = options["ids"]
        if ids:
            campaigns = campaigns.filter(pk__in=ids)
            missing = sorted(set(ids) - set(campaigns.values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"no campaign with id {', '.join(map(str, missing))}")
        if options["dirty"]:
            campaigns = campaigns.exclude(snapshot__dirty=False)
        for campaign in campaigns:
            snap = campaign_snapshot_refresh(campaign=campaign)
            note = " (still dirty: ratings arrived meanwhile)" if snap.dirty else ""
            self.stdout.write(
                f"campaign {campaign.pk} ({campaign.name}): {snap.ratings_count} ratings, "
                f"{snap.seconds:.2f} s{note}"
            )
