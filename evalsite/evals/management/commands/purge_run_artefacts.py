"""`python manage.py purge_run_artefacts --older-than-days N [--dry-run]`: retention for run files.

Why keep primary runs: they are what leaderboards, comparisons and rating campaigns point at (one
per model version × set version); other finished runs older than N days lose their files (PNGs,
cutouts, web copies) but keep every number, so their pages still show summaries and tables.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from evalsite.evals.models import FINISHED_STATUSES, EvalRun
from evalsite.evals.selectors import primary_run_ids
from evalsite.evals.services.artefacts import purge_run_folder
from pipelines import cli_args


class Command(BaseCommand):
    help = "Delete the image files of finished runs older than N days, keeping primary runs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--older-than-days", type=cli_args.whole_number, required=True)
        parser.add_argument("--dry-run", action="store_true", help="list, delete nothing")

    def handle(self, *args: Any, **opts: Any) -> None:
        days = opts["older_than_days"]
        if days < 0:
            raise CommandError("--older-than-days must be 0 or more")
        cutoff = timezone.now() - timedelta(days=days)
        keep = set(primary_run_ids().values())
        candidates = (
            EvalRun.objects.filter(
                status__in=FINISHED_STATUSES,
                finished_at__lt=cutoff,
                artefacts_purged_at__isnull=True,
            )
            .exclude(pk__in=keep)
            .order_by("pk")
        )
        purged = 0
        for run in candidates:
            if opts["dry_run"]:
                self.stdout.write(f"would purge run #{run.pk}")
                continue
            purge_run_folder(run.pk)
            EvalRun.objects.filter(pk=run.pk).update(artefacts_purged_at=timezone.now())
            purged += 1
        verb = "would purge" if opts["dry_run"] else "purged"
        count = candidates.count() if opts["dry_run"] else purged
        self.stdout.write(
            f"{verb} artefacts of {count} run(s) finished before {cutoff:%Y-%m-%d}; "
            f"kept {len(keep)} primary run(s)"
        )
