"""`python manage.py import_predictions FOLDER --model F:V|F:ALIAS --dataset NAME[:HASH-PREFIX]
[--latency CSV] [--device TEXT] [--os TEXT] [--runtime-label TEXT] [--compute-units TEXT]
[--provenance TEXT] [--parity-run ID] [--user NAME] [--ignore-extra] [--json]` (reports contract).

FOLDER holds one 8-bit greyscale `<stem>.png` alpha per item of the set version (what
`python -m pipelines.predict --out` writes). The run is scored here, synchronously, exactly like a
worker run, with source `imported`; prints `run <id>` (with --json: the run's results JSON).
Exit 0 done; 1 nothing created, with every reason (missing / extra stems, unreadable or
wrong-size PNGs, a bad latency CSV, unknown model or set).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from evalsite.datasets.errors import VersionSpecError
from evalsite.datasets.selectors import dataset_version_resolve
from evalsite.evals.errors import EvalError
from evalsite.evals.export import run_results_document
from evalsite.evals.imports.services import eval_run_import, parity_run_get
from evalsite.evals.selectors import run_get
from models.errors import VersionNotFound
from models.management.commands.register_model import user_arg
from models.selectors import model_version_resolve
from pipelines import cli_args

EXIT_REFUSED = 1


class Command(BaseCommand):
    help = "Import predictions made elsewhere (a device, another framework) as a scored run."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("folder", help="folder of <stem>.png alphas (predict --out)")
        parser.add_argument("--model", required=True, help="FAMILY:VERSION or FAMILY:ALIAS")
        parser.add_argument("--dataset", required=True, help="NAME or NAME:HASH-PREFIX")
        parser.add_argument(
            "--latency", help="CSV image,ms[,preprocess_ms,model_ms,postprocess_ms] (device)"
        )
        parser.add_argument("--device", default="", help="where the predictions were made")
        parser.add_argument("--os", default="", help="e.g. iOS 18.1, macOS 15.2")
        parser.add_argument("--runtime-label", default="", help="e.g. Core ML 8, onnxruntime 1.20")
        parser.add_argument("--compute-units", default="", help="e.g. cpuAndNeuralEngine")
        parser.add_argument("--provenance", default="", help="who produced them, how")
        parser.add_argument(
            "--parity-run",
            type=cli_args.record_id,
            help="run to compare the alphas with (default: the parent version's primary worker "
            "run on the set, else this version's)",
        )
        parser.add_argument(
            "--ignore-extra", action="store_true", help="accept PNGs that match no image of the set"
        )
        parser.add_argument("--user", help="username recorded as the importer")
        parser.add_argument("--json", action="store_true", help="print the run's results as JSON")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            user = user_arg(opts["user"])
        except CommandError as exc:
            raise CommandError(str(exc), returncode=EXIT_REFUSED) from None
        try:
            version = model_version_resolve(opts["model"], require_ready=True)
        except VersionNotFound as exc:
            raise CommandError(f"--model: {exc}", returncode=EXIT_REFUSED) from None
        try:
            dataset_version = dataset_version_resolve(opts["dataset"])
        except VersionSpecError as exc:
            raise CommandError(f"--dataset: {exc}", returncode=EXIT_REFUSED) from None
        latency_csv = None
        if opts["latency"]:
            path = Path(opts["latency"])
            try:
                latency_csv = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(
                    f"--latency {path}: cannot read the CSV ({exc})", returncode=EXIT_REFUSED
                ) from None
        folder = Path(opts["folder"])
        try:
            parity = None
            if opts["parity_run"] is not None:
                parity = parity_run_get(run_id=opts["parity_run"], dataset_version=dataset_version)
            run = eval_run_import(
                folder=folder,
                model_version=version,
                dataset_version=dataset_version,
                user=user,
                latency_csv=latency_csv,
                latency_label=Path(opts["latency"]).name if opts["latency"] else "latency CSV",
                device=opts["device"],
                os=opts["os"],
                runtime_label=opts["runtime_label"],
                compute_units=opts["compute_units"],
                provenance=opts["provenance"],
                import_name=str(folder),
                ignore_extra=opts["ignore_extra"],
                parity_of=parity,
            )
        except EvalError as exc:
            raise CommandError(f"nothing imported:\n{exc}", returncode=EXIT_REFUSED) from None
        run = run_get(run.pk)
        notes = (run.environment.get("import") or {}).get("notes") or []
        out = sys.stderr if opts["json"] else self.stdout
        for note in notes[:20]:
            out.write(f"note: {note}\n")
        if opts["json"]:
            self.stdout.write(json.dumps(run_results_document(run), indent=2, default=str))
        else:
            metrics = run.summary.get("metrics", {})
            self.stdout.write(f"run {run.pk}")
            self.stdout.write(
                f"{version.ref} on {dataset_version.spec}: {run.summary['counts']['ok']} images, "
                f"mean IoU {metrics.get('iou', 0):.4f}; page /runs/{run.pk}/"
            )
