"""`python manage.py import_dataset PATH --name NAME [--manifest FILE]` (synchronous).

Exit 0: imported (item-level skips listed) or unchanged (same name + same content, no new
version); exit 1: fatal problem, nothing written. The contract is in contracts/platform.md.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalsite.datasets.errors import ImportRejected, format_entry
from evalsite.datasets.importing import dataset_import

MAX_LISTED = 50  # longer lists are summarised; the full report is on the version page


class Command(BaseCommand):
    help = "Import a folder (images/ + masks/ matched by stem) or a .zip of it as a set version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="folder with images/ and masks/, or a .zip of it")
        parser.add_argument("--name", required=True, help="set name (a new version if it exists)")
        parser.add_argument(
            "--manifest",
            help="CSV with image,mask[,skin_tone,...] columns "
            "(default: manifest.csv in the folder, if present)",
        )
        parser.add_argument("--description", default="", help="set description (new sets only)")
        parser.add_argument("--licence", default="", help="set licence (new sets only)")
        parser.add_argument("--user", help="username recorded as the importer")

    def handle(self, *args: Any, **opts: Any) -> None:
        user = None
        if opts["user"]:
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None:
                raise CommandError(f"--user {opts['user']!r}: no such user")
        started = time.monotonic()
        try:
            result = dataset_import(
                path=opts["path"],
                name=opts["name"],
                manifest=opts["manifest"],
                user=user,
                description=opts["description"],
                licence=opts["licence"],
            )
        except ImportRejected as exc:
            self.stderr.write("Import rejected; nothing was written:")
            for e in exc.entries:
                self.stderr.write(f"  {format_entry(e)}")
            self._list_skipped(exc.report.get("skipped", []), err=True)
            raise CommandError(f"import of {opts['path']} as {opts['name']!r} failed") from None
        if result.outcome == "created":
            self._list_skipped(result.report.get("skipped", []))
            summary = result.report.get("recorded_summary") or {}
            if summary:
                notes = ", ".join(f"{k}: {v}" for k, v in sorted(summary.items()))
                self.stdout.write(f"Recorded (not errors): {notes}")
        elapsed = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(f"{result.message} ({elapsed:.1f} s)"))

    def _list_skipped(self, skipped: list[dict[str, str]], err: bool = False) -> None:
        out = self.stderr if err else self.stdout
        if not skipped:
            return
        out.write(f"Skipped {len(skipped)} item(s):")
        for e in skipped[:MAX_LISTED]:
            out.write(f"  {format_entry(e)}")
        if len(skipped) > MAX_LISTED:
            out.write(f"  … and {len(skipped) - MAX_LISTED} more (see the version's report)")
