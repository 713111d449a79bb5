"""`release_report`: build a release report now and exit with its verdict (contract exit codes).

0 every gate passes, 3 a gate fails, 4 no gate fails but one lacks evidence, 1 error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from evalsite.releases.errors import ReleaseError
from evalsite.releases.export import export_html
from evalsite.releases.selectors import release_report_payload, report_json
from evalsite.releases.services.refs import resolve_refs
from evalsite.releases.services.reports import release_report_create, release_report_run_now
from pipelines import cli_args
from pipelines.payloads.release_report import ReleaseReportPayload


class Command(BaseCommand):
    help = "Build a release report (candidate vs baseline on a set version) and print the verdict."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--candidate", required=True, help="F:V or F:ALIAS")
        parser.add_argument("--baseline", default="", help="F:V or F:ALIAS (default F:production)")
        parser.add_argument(
            "--dataset", required=True, action="append",
            help="NAME or NAME:HASH-PREFIX; repeat for a suite (the first is the quality set)",
        )  # fmt: skip
        parser.add_argument(
            "--campaign", type=cli_args.record_id, default=None, help="rating campaign id"
        )
        parser.add_argument("--json", dest="json_out", default="", help="write the JSON here")
        parser.add_argument("--html", dest="html_out", default="", help="write offline HTML here")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            refs = resolve_refs(
                candidate=opts["candidate"], baseline=opts["baseline"], dataset=opts["dataset"],
                campaign=opts["campaign"],
            )  # fmt: skip
            report = release_report_create(
                candidate=refs.candidate, baseline=refs.baseline,
                dataset_versions=refs.dataset_versions, campaign=refs.campaign, enqueue=False,
            )  # fmt: skip
            report = release_report_run_now(report=report)
        except ReleaseError as exc:
            self.stderr.write(f"error: {exc}")
            sys.exit(1)
        except Exception as exc:  # recorded on the report row by release_report_run_now
            self.stderr.write(f"error: {type(exc).__name__}: {exc}")
            sys.exit(1)
        payload = release_report_payload(report)
        if payload is None:  # release_report_run_now raises unless the report was built
            raise AssertionError(f"report {report.pk} finished without a payload")
        self.stdout.write(summary_text(payload, report.pk))
        if opts["json_out"]:
            document = report_json(report)
            Path(opts["json_out"]).write_text(json.dumps(document, indent=2, allow_nan=False))
        if opts["html_out"]:
            Path(opts["html_out"]).write_text(export_html(report), encoding="utf-8")
        sys.exit(payload.exit_code)


def summary_text(payload: ReleaseReportPayload, pk: int) -> str:
    words = {"pass": "ready to ship", "fail": "a gate fails", "insufficient": "not enough evidence"}
    sets = ", ".join(payload.datasets)
    lines = [
        f"report {pk}",
        f"{payload.candidate} vs {payload.baseline} on {sets}",
        f"verdict: {payload.verdict} ({words[payload.verdict]})",
    ]
    for gate in payload.gates:
        where = f" [{gate.dataset}]" if gate.dataset and len(payload.datasets) > 1 else ""
        lines.append(f"  [{gate.status}] {gate.name}{where}: {gate.text}")
    return "\n".join(lines)
