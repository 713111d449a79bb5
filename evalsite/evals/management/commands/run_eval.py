"""`python manage.py run_eval --model F:V|F:ALIAS --dataset NAME[:HASH] [--runtime R] [--wait
[--timeout S]] [--json]` — start an evaluation run, optionally wait for it (platform.md).
`run_eval --reproduce RUN [--wait]` re-runs a done run's configuration; when it is done, its
stored comparison ("reproduced 30/30 identical", or the noise level) is printed.

Exit status: 0 started (or, with --wait, finished done); 1 bad input, or the run failed / was
cancelled; 2 --wait found no live worker consuming the run's queue (the run stays queued and
starts when one connects — we say which queue instead of hanging); 3 --timeout passed.
With --json the document goes to stdout and human messages to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from evalsite.core.errors import command_error
from evalsite.core.models import Job
from evalsite.core.selectors import NO_WORKERS, workers_by_queue
from evalsite.datasets.errors import VersionSpecError
from evalsite.datasets.selectors import dataset_version_resolve
from evalsite.evals.errors import EvalError, RunNotFound
from evalsite.evals.export import run_results_document, run_status_document
from evalsite.evals.models import EvalRun, RunStatus
from evalsite.evals.selectors import run_get, run_progress
from evalsite.evals.services.aggregate import eval_run_reconcile
from evalsite.evals.services.reproduce import eval_run_reproduce
from evalsite.evals.services.runs import ALL_RUNTIMES, DEFAULT_RUNTIME, eval_run_start
from models.errors import VersionNotFound
from models.selectors import model_version_resolve
from pipelines import cli_args

EXIT_FAILED = 1
EXIT_NO_WORKER = 2
EXIT_TIMEOUT = 3
POLL_SECONDS = 1.0


class Command(BaseCommand):
    help = "Start an evaluation run of a model version on a held-out set version."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--model", help="FAMILY:VERSION or FAMILY:ALIAS")
        parser.add_argument("--dataset", help="NAME or NAME:HASH-PREFIX")
        parser.add_argument(
            "--reproduce",
            type=cli_args.record_id,
            metavar="RUN",
            help="re-run done run RUN with its configuration and compare every image "
            "(instead of --model/--dataset); with --wait, prints the verdict",
        )
        parser.add_argument("--runtime", default=DEFAULT_RUNTIME, choices=ALL_RUNTIMES)
        parser.add_argument("--wait", action="store_true", help="wait until the run finishes")
        parser.add_argument(
            "--timeout",
            type=cli_args.finite_number,
            default=3600.0,
            help="seconds --wait waits (default 3600)",
        )
        parser.add_argument("--json", action="store_true", help="print the run as JSON")

    def handle(self, *args: Any, **opts: Any) -> None:
        self.as_json = bool(opts["json"])
        run = self.reproduce(opts) if opts["reproduce"] is not None else self.start(opts)
        if not opts["wait"]:
            self.emit(run_status_document(run_get(run.pk)))
            return
        run = self.wait(run, opts["timeout"])
        document = run_results_document(run) if run.status == RunStatus.DONE else None
        self.emit(document or run_status_document(run))
        if run.status != RunStatus.DONE:
            raise CommandError(f"run #{run.pk} {run.status}: {run.error}", returncode=EXIT_FAILED)
        metrics = run.summary.get("metrics", {})
        counts = run.summary.get("counts", {})
        self.say(
            f"run #{run.pk} done: {counts.get('ok')} ok, {counts.get('failed')} failed; "
            f"mean IoU {metrics.get('iou', 0):.4f}, boundary F {metrics.get('boundary_f', 0):.4f}"
        )
        if run.reproduce_of_id:
            verdict = (run.reproduction or {}).get("verdict", "comparison not stored")
            self.say(f"run #{run.pk} vs run #{run.reproduce_of_id}: {verdict}")

    def reproduce(self, opts: dict[str, Any]) -> EvalRun:
        if opts["model"] or opts["dataset"]:
            raise CommandError(
                "--reproduce takes the model, set and configuration from the run; "
                "drop --model/--dataset",
                returncode=EXIT_FAILED,
            )
        try:
            original = run_get(opts["reproduce"])
        except RunNotFound as exc:
            raise command_error(exc, returncode=EXIT_FAILED, prefix="--reproduce: ") from None
        try:
            run = eval_run_reproduce(run=original)
        except EvalError as exc:
            raise CommandError(f"--reproduce: {exc}", returncode=EXIT_FAILED) from None
        self.say(
            f"Started run #{run.pk} reproducing run #{original.pk}: "
            f"{original.model_version.ref} on {original.dataset_version.spec}; page /runs/{run.pk}/"
        )
        return run

    def start(self, opts: dict[str, Any]) -> EvalRun:
        for name in ("model", "dataset"):
            if not opts[name]:
                raise CommandError(
                    f"--{name} is required (or --reproduce RUN)", returncode=EXIT_FAILED
                )
        try:
            version = model_version_resolve(opts["model"], require_ready=True)
        except VersionNotFound as exc:
            raise command_error(exc, returncode=EXIT_FAILED, prefix="--model: ") from None
        try:
            dataset_version = dataset_version_resolve(opts["dataset"])
        except VersionSpecError as exc:
            raise CommandError(f"--dataset: {exc}", returncode=EXIT_FAILED) from None
        try:
            run = eval_run_start(
                model_version=version, dataset_version=dataset_version, runtime=opts["runtime"]
            )
        except EvalError as exc:
            raise CommandError(str(exc), returncode=EXIT_FAILED) from None
        self.say(
            f"Started run #{run.pk}: {version.ref} on {dataset_version.spec} "
            f"({dataset_version.item_count} items, runtime {run.runtime}, queue {run.queue}); "
            f"page /runs/{run.pk}/"
        )
        return run

    def wait(self, run: EvalRun, timeout: float) -> EvalRun:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            run = eval_run_reconcile(run=run_get(run.pk))
            if run.is_finished:
                return _after_finishing_step(run)
            live = workers_by_queue().get(run.queue, NO_WORKERS)
            if not live.live:
                note = live.note
                raise CommandError(
                    f"no live worker consumes the {run.queue!r} queue ({note}); run #{run.pk} "
                    f"stays queued and starts when one connects "
                    f"(e.g. celery -A evalsite worker -Q {run.queue})",
                    returncode=EXIT_NO_WORKER,
                )
            progress = run_progress(run)
            line = f"run #{run.pk} {run.status}: {progress['done']}/{progress['items']} items"
            if progress["failed"]:
                line += f" ({progress['failed']} failed)"
            if line != last:
                self.say(line)
                last = line
            if time.monotonic() > deadline:
                raise CommandError(
                    f"run #{run.pk} did not finish within {timeout:g} s (still {run.status}); "
                    "it keeps running",
                    returncode=EXIT_TIMEOUT,
                )
            time.sleep(POLL_SECONDS)

    def say(self, message: str) -> None:
        (sys.stderr if self.as_json else self.stdout).write(message + "\n")

    def emit(self, document: dict[str, Any]) -> None:
        if self.as_json:
            self.stdout.write(json.dumps(document, indent=2, default=str))


#: How long a finished run's finishing step may take to be recorded before the command reports
#: what is stored (the step stores sections after the run is marked done: seconds at most).
FINISHING_STEP_SECONDS = 30.0


def _after_finishing_step(run: EvalRun) -> EvalRun:
    """The run is marked done inside its job's finishing step, which then stores the sections
    read after it (reproduction, parity): wait for the step to be recorded, not the status."""
    deadline = time.monotonic() + FINISHING_STEP_SECONDS
    while run.job_id and time.monotonic() < deadline:
        if Job.objects.filter(pk=run.job_id, hook_ran_at__isnull=False).exists():
            break
        time.sleep(0.2)
    return run_get(run.pk)
