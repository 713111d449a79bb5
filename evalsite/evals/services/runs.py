"""Starting, cancelling and re-running evaluation runs (one service behind web, CLI, API, demo).

Why a config hash: two runs with the same model bytes, set content, runtime and post-processing
must give the same numbers, so the hash identifies "the same evaluation" across re-runs (the demo
reuses a finished run with the same hash instead of evaluating again).
"""

from __future__ import annotations

import platform
import socket
import subprocess
from importlib import metadata
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from evalsite.core.jobs import job_cancel, job_create
from evalsite.datasets.models import DatasetVersion
from evalsite.datasets.selectors import revision_pick
from evalsite.evals.errors import EvalError
from evalsite.evals.models import EvalRun, RunSource, RunStatus
from models.models import ModelFormat, ModelVersion, VersionStatus
from pipelines.chunking import chunk_bounds
from pipelines.hashing import sha256_json
from pipelines.payloads import JsonObject
from pipelines.runners import RUNTIMES, queue_for_format

EVAL_JOB = "evals.run"
#: Items per chunk, at most (a long run ends on smaller pieces: pipelines.chunking). A worker
#: keeps its model session across chunks of one version, so a chunk costs a claim, a message and a
#: commit; small enough that a crashed worker loses little work and a 50-image set still spreads
#: over two or more workers (bench/throughput.py measures the effect).
CHUNK_SIZE = 16

#: Runtimes a run may request per model format (pipelines.runners accepts the same); "auto"
#: lets the worker pick the best device (MPS, then CUDA, then CPU; ONNX picks its provider).
RUNTIMES_BY_FORMAT: dict[str, tuple[str, ...]] = {
    ModelFormat.TORCH_EXPORT: ("auto", "cpu", "cuda", "mps"),
    ModelFormat.TORCHSCRIPT: ("auto", "cpu", "cuda", "mps"),
    ModelFormat.ONNX: ("auto", "onnx-cpu", "onnx-cuda", "onnx-coreml", "cpu", "cuda"),
    ModelFormat.COREML: ("auto", "coreml"),
    ModelFormat.BUILTIN: ("auto", "builtin", "cpu"),
}
ALL_RUNTIMES = tuple(RUNTIMES)
DEFAULT_RUNTIME = "auto"
#: Smallest instance as a share of the image (pipelines.postprocess.instances' default).
DEFAULT_MIN_INSTANCE_AREA = 0.002
DEFAULT_POSTPROCESS: dict[str, Any] = {
    "upsample": "guided",
    "gate": True,
    "gate_threshold": None,  # None: the spec's gate_threshold
    "min_instance_area": DEFAULT_MIN_INSTANCE_AREA,
}
LIBRARIES = ("django", "celery", "numpy", "opencv-contrib-python-headless", "pillow", "torch",
             "onnxruntime", "coremltools")  # fmt: skip


def postprocess_normalise(options: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults filled in and values checked; raises EvalError naming the bad option."""
    raw = dict(options or {})
    unknown = set(raw) - set(DEFAULT_POSTPROCESS)
    if unknown:
        raise EvalError(
            f"unknown post-processing option(s) {sorted(unknown)}; "
            f"known: {sorted(DEFAULT_POSTPROCESS)}"
        )
    out = {**DEFAULT_POSTPROCESS, **{k: v for k, v in raw.items() if v is not None}}
    if "gate_threshold" in raw:
        out["gate_threshold"] = raw["gate_threshold"]
    if out["upsample"] not in ("guided", "bilinear"):
        raise EvalError(f"upsample must be 'guided' or 'bilinear', got {out['upsample']!r}")
    if not isinstance(out["gate"], bool):
        raise EvalError(f"gate must be true or false, got {out['gate']!r}")
    if out["gate_threshold"] is not None:
        try:
            out["gate_threshold"] = float(out["gate_threshold"])
        except (TypeError, ValueError):
            raise EvalError(
                f"gate_threshold must be a number, got {out['gate_threshold']!r}"
            ) from None
        if not 0 <= out["gate_threshold"] <= 1:
            raise EvalError(f"gate_threshold must be within [0, 1], got {out['gate_threshold']}")
    try:
        area = float(out["min_instance_area"])
    except (TypeError, ValueError):
        raise EvalError(
            f"min_instance_area must be a number, got {out['min_instance_area']!r}"
        ) from None
    if not 0 <= area < 1:
        raise EvalError(f"min_instance_area is a share of the image in [0, 1), got {area}")
    out["min_instance_area"] = area
    return out


def model_identity(version: ModelVersion) -> str:
    """What makes a model's numbers what they are: its file digest, or the builtin runner + spec."""
    if version.sha256:
        return version.sha256
    return "spec:" + sha256_json(version.spec or {})


def config_hash(
    *, version: ModelVersion, dataset_version: DatasetVersion, runtime: str, post: dict[str, Any]
) -> str:
    document = {
        "model": model_identity(version),
        "dataset": dataset_version.content_hash,
        "runtime": runtime,
        "postprocess": post,
    }
    return sha256_json(document)


def queue_for(version: ModelVersion) -> str:
    """torch / onnx / coreml by format (builtin baselines are CPU compute: the torch queue)."""
    if version.format not in RUNTIMES_BY_FORMAT:
        raise EvalError(f"{version.ref} has format {version.format!r}, which no worker runs")
    return queue_for_format(version.format)


def runtime_check(version: ModelVersion, runtime: str) -> str:
    allowed = RUNTIMES_BY_FORMAT.get(version.format, ("auto",))
    if runtime not in allowed:
        raise EvalError(
            f"runtime {runtime!r} does not run a {version.format} model; "
            f"choose one of {', '.join(allowed)}"
        )
    return runtime


def platform_commit() -> str:
    """`git rev-parse HEAD` of the platform checkout, or "" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def start_environment() -> dict[str, Any]:
    """Recorded when a run is created; workers add theirs (threads, device, seeds) per chunk."""
    return {
        "platform_commit": platform_commit(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "created_on": socket.gethostname(),
        "libraries": library_versions(),
    }


def eval_run_start(
    *,
    model_version: ModelVersion,
    dataset_version: DatasetVersion,
    user: User | None = None,
    runtime: str = DEFAULT_RUNTIME,
    postprocess: JsonObject | None = None,
    parity: bool = False,
    chunk_size: int = CHUNK_SIZE,
    parity_of: EvalRun | None = None,
) -> EvalRun:
    """Create the run and its chunks; chunks are enqueued after the transaction commits.

    With `parity`, runs of the version's ready ONNX / Core ML children start too (same images,
    same post-processing), each pointing back with `parity_of` so the run page can compare them.
    """
    if model_version.status != VersionStatus.READY:
        why = f": {model_version.rejection_reason}" if model_version.rejection_reason else ""
        raise EvalError(f"{model_version.ref} is {model_version.status}, not ready{why}")
    if model_version.is_external:
        raise EvalError(
            f"{model_version.ref} is an external model (predictions imported, not run here): "
            "no worker can run it; import its predictions with `python manage.py "
            "import_predictions` or on the run import page"
        )
    runtime_check(model_version, runtime)
    post = postprocess_normalise(dict(postprocess) if postprocess is not None else None)
    queue = queue_for(model_version)
    if chunk_size < 1:
        raise EvalError("chunk_size must be at least 1")
    item_ids = list(dataset_version.items.order_by("pk").values_list("pk", flat=True))
    if not item_ids:
        raise EvalError(f"{dataset_version.spec} has no items to evaluate")
    with transaction.atomic():
        run = EvalRun.objects.create(
            model_version=model_version,
            dataset_version=dataset_version,
            attribute_revision=revision_pick(version=dataset_version),
            runtime=runtime,
            queue=queue,
            postprocess=post,
            config_hash=config_hash(
                version=model_version, dataset_version=dataset_version, runtime=runtime, post=post
            ),
            is_default_config=(runtime == DEFAULT_RUNTIME and post == DEFAULT_POSTPROCESS),
            parity_of=parity_of,
            chunk_size=chunk_size,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            environment=start_environment(),
        )
        chunks: list[JsonObject] = [
            {"run_id": run.pk, "item_ids": item_ids[start:stop]}
            for start, stop in chunk_bounds(len(item_ids), chunk_size)
        ]
        run_job_attach(run, kind=EVAL_JOB, chunks=chunks, queue=queue)
        if parity:
            for child in parity_children(model_version):
                eval_run_start(
                    model_version=child,
                    dataset_version=dataset_version,
                    user=user,
                    postprocess=post,
                    chunk_size=chunk_size,
                    parity_of=run,
                )
    return run


def run_job_attach(run: EvalRun, *, kind: str, chunks: list[JsonObject], queue: str) -> None:
    """Create the job that does `run`'s work (`chunks`, in the caller's transaction) and link
    the run to it."""
    job = job_create(
        kind=kind, chunks=chunks, queue=queue, payload={"run_id": run.pk},
        created_by=run.created_by,
    )  # fmt: skip
    EvalRun.objects.filter(pk=run.pk).update(job=job)
    run.job = job


def parity_children(version: ModelVersion) -> list[ModelVersion]:
    """Ready ONNX / Core ML conversions of a version (the parity option evaluates them too)."""
    return list(
        version.children.filter(
            status=VersionStatus.READY, format__in=[ModelFormat.ONNX, ModelFormat.COREML]
        ).select_related("family")
    )


def eval_run_cancel(*, run: EvalRun, reason: str = "cancelled by user") -> bool:
    """Cancel a queued or running run; chunks already running stop at their next item."""
    if run.is_finished:
        return False
    with transaction.atomic():
        if run.job is not None:
            job_cancel(job=run.job, reason=reason)  # its on_cancelled hook marks the run too
        return bool(eval_run_mark_cancelled(run_id=run.pk, reason=reason))


def eval_run_mark_cancelled(*, run_id: int, reason: str) -> int:
    return EvalRun.objects.filter(
        pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).update(status=RunStatus.CANCELLED, error=reason, finished_at=timezone.now())


def eval_run_rerun(*, run: EvalRun, user: User | None = None) -> EvalRun:
    """A new run with the same version, set, runtime and post-processing."""
    if run.source == RunSource.IMPORTED:
        raise EvalError(
            f"run #{run.pk} holds imported predictions (not run here); import them again instead"
        )
    return eval_run_start(
        model_version=run.model_version,
        dataset_version=run.dataset_version,
        user=user,
        runtime=run.runtime,
        postprocess=run.postprocess,
        chunk_size=run.chunk_size,
    )


def eval_run_fail(*, run_id: int, reason: str) -> int:
    return EvalRun.objects.filter(
        pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).update(status=RunStatus.FAILED, error=reason, finished_at=timezone.now())


def eval_run_mark_running(*, run_id: int) -> int:
    return EvalRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
