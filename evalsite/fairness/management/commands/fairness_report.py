"""`python manage.py fairness_report --run ID [--json OUT] [--min-group-size N] [--margin X]
[--skin-tone-groups 1-3,4-7,8-10]` — compute (and store) a run's fairness report, print the flags
in words, write the JSON (docs/contracts/reports.md).

Exit 0 whether or not anything is flagged (flags are information here, not failure); exit 1 when
the run's set has no person attributes, the run is unknown or unfinished, or a setting is bad
(a skin-tone grouping that misses tones is refused naming them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalsite.core.errors import command_error
from evalsite.evals.errors import RunNotFound
from evalsite.evals.selectors import run_get
from evalsite.fairness.inputs import NoPersonAttributes
from evalsite.fairness.presenters import judged_groups
from evalsite.fairness.services import fairness_report_compute, settings_for
from pipelines import cli_args
from pipelines.fairness.grouping import display_group
from pipelines.metrics.registry import label


class Command(BaseCommand):
    help = "Compute a run's fairness report by skin tone, perceived gender and their intersection."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--run", type=cli_args.record_id, required=True, help="run id")
        parser.add_argument(
            "--json", metavar="OUT", help="write the fairness JSON to this file ('-' for stdout)"
        )
        parser.add_argument(
            "--min-group-size",
            type=cli_args.positive_int,
            default=None,
            help="groups below this many images are 'too small to judge' (30)",
        )
        parser.add_argument(
            "--margin",
            type=cli_args.unit_interval,
            default=None,
            help="smallest gap that can be flagged (0.03)",
        )
        parser.add_argument(
            "--skin-tone-groups",
            default=None,
            help="Monk grouping, covering 1-10 once (default: the set's)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            run = run_get(opts["run"])
        except RunNotFound as exc:
            raise command_error(exc, prefix="--run: ") from None
        try:
            settings = settings_for(
                run=run,
                min_group_size=opts["min_group_size"],
                margin=opts["margin"],
                skin_tone_groups=opts["skin_tone_groups"],
            )
        except ValueError as exc:
            raise CommandError(str(exc), returncode=1) from None
        try:
            report = fairness_report_compute(run=run, settings=settings)
        except NoPersonAttributes as exc:
            raise CommandError(
                f"run #{run.pk} on {run.dataset_version.spec}: {exc}", returncode=1
            ) from None
        except ValueError as exc:
            raise CommandError(str(exc), returncode=1) from None
        doc = report.data
        to_stdout = opts["json"] == "-"
        out = self.stderr if to_stdout else self.stdout
        self._print(doc, out)
        if opts["json"]:
            text = json.dumps(doc, indent=2)
            if to_stdout:
                self.stdout.write(text)
            else:
                Path(opts["json"]).write_text(text + "\n", encoding="utf-8")
                out.write(f"wrote {opts['json']}")

    def _print(self, doc: dict[str, Any], out: Any) -> None:
        synthetic = " — labels are SYNTHETIC" if doc["synthetic_labels"] else ""
        s = doc["settings"]
        out.write(
            f"Fairness of run #{doc['run']} on {doc['dataset']} (attribute revision "
            f"{doc['attribute_revision']['number']}, {doc['n']} images with a person){synthetic}"
        )
        out.write(
            f"  settings: min group size {s['min_group_size']}, margin {s['margin']}, "
            f"alpha {s['alpha']}, {s['rounds']} rounds, tones {s['skin_tone_groups']}"
        )
        small = sorted(
            {
                f"{display_group(g['attribute'], g['group'])} (n={g['n']})"
                for g in doc["groups"]
                if g["too_small"]
            }
        )
        if small:
            out.write(f"  too small to judge: {', '.join(small)}")
        judged = judged_groups(doc["groups"])
        if judged["nothing_judged"]:
            out.write(
                f"  nothing could be judged: no group reached the minimum size of "
                f"{s['min_group_size']} images (the largest has {judged['largest_n']}); no group "
                "was tested, so nothing is flagged or cleared"
            )
        elif not doc["flags"]:
            out.write(
                f"  no flags among the {judged['judged']} groups judged: none is worse than the "
                "other images by more than the margin after Holm's correction"
            )
        for flag in doc["flags"]:
            out.write(f"  FLAG {flag['text']}")
        for metric, row in doc["summary"].items():
            gap = row.get("largest_gap")
            if gap:
                out.write(
                    f"  {label(metric)}: largest gap "
                    f"{display_group(gap['attribute'], gap['group'])} {gap['gap']:+.3f}"
                )
