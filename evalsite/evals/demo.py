"""`make demo` step of the eval app: evaluate the demo models on the demo sets, then wait.

Idempotent: a finished (or still active) run with the same config hash is reused, so restarting
the demo does not evaluate again. Runs whose queue no live worker consumes (Core ML without a
macOS worker) are started but not waited for: their page says what they wait for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from evalsite.core.selectors import NO_WORKERS, workers_by_queue
from evalsite.datasets.models import Dataset, DatasetVersion
from evalsite.env import env_float
from evalsite.evals.models import EvalRun, RunStatus
from evalsite.evals.selectors import run_progress
from evalsite.evals.services.runs import (
    DEFAULT_POSTPROCESS,
    DEFAULT_RUNTIME,
    config_hash,
    eval_run_start,
)
from models.models import ModelFormat, ModelVersion, VersionStatus

DEMO_FAMILY = "subject-lift"
DEMO_VERSIONS = ("1.0.0", "1.1.0", "1.2.0")
#: The demo waits this long for its runs (the demo set takes well under a minute on one CPU).
WAIT_SECONDS = env_float("DEMO_EVAL_TIMEOUT", 1800.0, minimum=1)  # typed: a bad value names it
POLL_SECONDS = 2.0
#: The set whose baseline run the demo reproduces (30 real photos: ~20 s of GrabCut on one core).
REPRODUCED_SET = "pascal-s-demo"

Log = Callable[[str], object]


def demo_versions() -> list[ModelVersion]:
    """subject-lift 1.0.0, 1.1.0 and 1.2.0 (those registered), and every ready built-in baseline."""
    wanted = list(
        ModelVersion.objects.filter(
            family__name=DEMO_FAMILY, version__in=DEMO_VERSIONS, status=VersionStatus.READY
        ).select_related("family")
    )
    baselines = ModelVersion.objects.filter(
        format=ModelFormat.BUILTIN, status=VersionStatus.READY
    ).select_related("family")
    return wanted + [b for b in baselines if b not in wanted]


def demo_sets() -> list[DatasetVersion]:
    """The latest version of every set (the demo imports only demo sets)."""
    out = []
    for dataset in Dataset.objects.all():
        latest = dataset.versions.select_related("dataset").order_by("-created_at", "-pk").first()
        if latest is not None:
            out.append(latest)
    return out


def run_for(version: ModelVersion, dataset_version: DatasetVersion, log: Log) -> EvalRun:
    digest = config_hash(
        version=version,
        dataset_version=dataset_version,
        runtime=DEFAULT_RUNTIME,
        post=dict(DEFAULT_POSTPROCESS),
    )
    existing = (
        EvalRun.objects.filter(
            config_hash=digest,
            status__in=[RunStatus.DONE, RunStatus.QUEUED, RunStatus.RUNNING],
        )
        .order_by("-created_at")
        .first()
    )
    if existing is not None:
        log(f"    run #{existing.pk} of {version.ref} on {dataset_version.spec}: {existing.status}")
        return existing
    run = eval_run_start(model_version=version, dataset_version=dataset_version)
    log(f"    started run #{run.pk}: {version.ref} on {dataset_version.spec} (queue {run.queue})")
    return run


def after_start(log: Log) -> None:
    versions, sets = demo_versions(), demo_sets()
    if not versions or not sets:
        log("==> evaluations: no demo model or set found; skipped")
        return
    log(f"==> evaluating {len(versions)} model version(s) on {len(sets)} set(s)")
    runs = [run_for(v, s, log) for s in sets for v in versions]
    wait_for_runs(runs, log)
    reproduce_baseline(runs, log)
    from evalsite.evals.imports.demo import import_demo_run

    import_demo_run(log)  # after the worker runs: its parity needs 1.1.0's run


def reproduce_baseline(runs: list[EvalRun], log: Log) -> None:
    """Reproduce the GrabCut baseline's run on the PASCAL-S demo set (the run whose reproduction
    once differed) so its page shows the verdict; reuses a finished reproduction."""
    from evalsite.evals.services.reproduce import eval_run_reproduce

    done = EvalRun.objects.filter(
        pk__in=[r.pk for r in runs],
        status=RunStatus.DONE,
        model_version__format=ModelFormat.BUILTIN,
        dataset_version__dataset__name=REPRODUCED_SET,
    ).first()
    if done is None:
        return
    repro = done.reproductions.exclude(status__in=[RunStatus.FAILED, RunStatus.CANCELLED]).first()
    if repro is None:
        repro = eval_run_reproduce(run=done)
        log(f"==> reproducing run #{done.pk} ({done.model_version.ref}) as run #{repro.pk}")
    wait_for_runs([repro], log)
    repro.refresh_from_db()
    if repro.reproduction:
        log(f"    run #{repro.pk} vs run #{done.pk}: {repro.reproduction['verdict']}")


def wait_for_runs(runs: list[EvalRun], log: Log) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    last: dict[int, str] = {}
    pending = {r.pk for r in runs}
    while pending and time.monotonic() < deadline:
        queues = workers_by_queue()
        active = EvalRun.objects.filter(pk__in=pending).select_related(
            "model_version__family", "dataset_version__dataset", "job"
        )
        for run in active.order_by("pk"):
            progress = run_progress(run)
            line = (
                f"    run #{run.pk} {run.model_version.ref}: {run.status} "
                f"{progress['done']}/{progress['items']}"
            )
            if run.is_finished:
                metrics = run.summary.get("metrics") or {}
                line += f" — mean IoU {metrics['iou']:.4f}" if "iou" in metrics else ""
                line += f" — {run.error}" if run.error else ""
                pending.discard(run.pk)
            elif not queues.get(run.queue, NO_WORKERS).live:
                line += f" — {progress['waiting']} (not waiting for it)"
                pending.discard(run.pk)
            if last.get(run.pk) != line:
                log(line)
                last[run.pk] = line
        if pending:
            time.sleep(POLL_SECONDS)
    if pending:
        log(f"    still running after {WAIT_SECONDS:.0f} s: runs {sorted(pending)}; see /runs/")
