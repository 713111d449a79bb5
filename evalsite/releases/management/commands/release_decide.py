"""`release_decide`: record the decision of a release report (the service behind the page and API).

Exit 0 recorded; 5 refused because the evidence moved on or does not match (stale report,
baseline no longer production, or the report already has its decision); 6 refused because the
verdict is not pass and no --override reason was given; 1 other errors (unknown report, unknown
user, no permission).
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandParser

from evalsite.releases.errors import ReleaseError, ReportNotFound
from evalsite.releases.selectors import report_get
from evalsite.releases.services.decisions import release_decision_record
from pipelines import cli_args

DECISIONS = {"approve": "approve", "reject": "reject", "more-data": "needs_more_data"}


class Command(BaseCommand):
    help = "Record the decision (approve, reject, more-data) of a release report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--report", type=cli_args.record_id, required=True, help="release report id"
        )
        parser.add_argument("--decision", required=True, choices=sorted(DECISIONS))
        parser.add_argument(
            "--move-production", action="store_true",
            help="approve only: move the family's production alias to the candidate",
        )  # fmt: skip
        parser.add_argument("--reason", default="", help="why (kept with the decision)")
        parser.add_argument(
            "--override", default="",
            help="needed to approve a verdict other than pass: why approve anyway",
        )  # fmt: skip
        parser.add_argument(
            "--as", dest="username", default="", help="the release manager deciding (username)"
        )

    def fail(self, message: str, code: int) -> NoReturn:
        self.stderr.write(f"refused: {message}" if code != 1 else f"error: {message}")
        sys.exit(code)

    def handle(self, *args: Any, **opts: Any) -> None:
        if not opts["username"]:
            self.fail("say who decides: --as USERNAME (a release manager or admin)", 1)
        user = get_user_model().objects.filter(username=opts["username"]).first()
        if user is None:
            self.fail(f"no user {opts['username']!r}", 1)
        try:
            report = report_get(opts["report"])
            decision = release_decision_record(
                report=report, user=user, decision=DECISIONS[opts["decision"]],
                reason=opts["reason"] or "", move_production=opts["move_production"],
                override=opts["override"] or "",
            )  # fmt: skip
        except ReportNotFound as exc:
            self.fail(str(exc), 1)
        except PermissionDenied as exc:
            self.fail(str(exc), 1)
        except ReleaseError as exc:
            self.fail(str(exc), exc.exit_code)
        moved = ""
        if decision.alias_move_id:
            moved = f"; production now points to {report.candidate.ref}"
        override = f" (override: {decision.override})" if decision.override else ""
        self.stdout.write(
            f"decision {decision.pk}: {decision.get_decision_display()} on report {report.pk}"
            f"{override}{moved}"
        )
