"""Imported runs: predictions made elsewhere, scored exactly like a worker run's (one service).

`eval_run_import` is the one service behind the CLI, the web upload and the REST endpoint. It
checks the whole folder first (stems, PNG decoding, sizes, latency CSV; `checks.py`) and refuses
with every problem before anything is written. Then the prediction files are kept as sent under
`runs/<id>/imported/`, and each item goes through `execute.score_output` — the function a worker
run calls after its model and post-processing — so files, metrics, instances, cutouts and web
copies come from the same code; `aggregate.eval_run_finalise` then builds the summary from the
stored rows and curves as for any run.

Modes: "inline" (CLI, demo) scores everything in one transaction in this process, so any failure
leaves nothing at all; "job" (web, API; the zip door is `upload.py`) creates the run and chunks on
the job primitive (queue `default`) and a worker scores them, each chunk in one transaction,
progress read from the rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from django.contrib.auth.models import User
from django.db import transaction

from evalsite.core import files
from evalsite.core.jobs import ChunkLost
from evalsite.core.models import Chunk
from evalsite.core.text import text_problems
from evalsite.datasets.models import AttributeRevision, DatasetVersion, Item
from evalsite.datasets.selectors import revision_pick
from evalsite.evals.imports.checks import CheckedImport, ImportRefused, predictions_check
from evalsite.evals.models import EvalRun, ItemResult, RunSource, RunStatus
from evalsite.evals.services.aggregate import eval_run_finalise
from evalsite.evals.services.artefacts import run_file, run_prefix
from evalsite.evals.services.execute import Curves, score_output
from evalsite.evals.services.runs import (
    DEFAULT_MIN_INSTANCE_AREA,
    DEFAULT_RUNTIME,
    eval_run_mark_running,
    model_identity,
    run_job_attach,
    start_environment,
)
from evalsite.evals.services.scores import curves_save
from models.models import ModelFormat, ModelVersion
from pipelines.hashing import sha256_bytes, sha256_file, sha256_json
from pipelines.imports import imported_postresult, read_prediction
from pipelines.payloads import JsonObject

IMPORT_JOB = "evals.import"
IMPORT_QUEUE = "default"
#: Items per chunk of an imported run. No model is loaded, so a chunk costs only decoding,
#: instance splitting, cutouts and scoring (≈ 30–60 ms per demo-sized image on one core):
#: 32 items keep a chunk's transaction a few seconds long and spread a 500-image set over workers.
IMPORT_CHUNK_SIZE = 32
#: Stored under runs/<id>/: the prediction files exactly as they were imported.
IMPORTED_FOLDER = "imported"
#: The label latency is grouped under when the importer did not name the device.
UNSTATED_DEVICE = "device not stated"

Mode = Literal["inline", "job"]


def predictions_digest(files: dict[str, Path]) -> str:
    """sha256 over the sorted `stem:sha256(bytes)` lines: identifies the imported predictions."""
    lines = []
    for stem in sorted(files):
        lines.append(f"{stem}:{sha256_file(files[stem])}")
    return sha256_bytes("\n".join(lines).encode())


def _config_hash(version: ModelVersion, dataset_version: DatasetVersion, digest: str) -> str:
    document = {
        "model": model_identity(version),
        "dataset": dataset_version.content_hash,
        "imported_predictions": digest,
    }
    return sha256_json(document)


def parity_reference(*, version: ModelVersion, dataset_version: DatasetVersion) -> EvalRun | None:
    """The run an imported run is checked against: the parent version's primary worker run on
    the same set version, else the version's own (device output vs platform worker output)."""
    for candidate in (version.parent, version):
        if candidate is None:
            continue
        run = (
            EvalRun.objects.filter(
                model_version=candidate,
                dataset_version=dataset_version,
                source=RunSource.WORKER,
                status=RunStatus.DONE,
                is_default_config=True,
            )
            .order_by("-finished_at", "-pk")
            .first()
        )
        if run is not None:
            return run
    return None


def parity_run_get(*, run_id: int, dataset_version: DatasetVersion) -> EvalRun:
    """The run an import is to be compared with, checked: finished, on the same set version."""
    run = EvalRun.objects.select_related("model_version__family").filter(pk=run_id).first()
    if run is None:
        raise ImportRefused([f"parity run #{run_id} does not exist"])
    if run.dataset_version_id != dataset_version.pk:
        raise ImportRefused(
            [f"parity run #{run_id} is on another set version; parity needs the same images "
             f"({dataset_version.spec})"]
        )  # fmt: skip
    if run.status != RunStatus.DONE:
        raise ImportRefused([f"parity run #{run_id} is {run.status}, not done"])
    return run


def _latency(row: dict[str, float] | None, device: str) -> dict[str, Any]:
    if not row:
        return {}
    return {**row, "device": device or UNSTATED_DEVICE}


def _score_item(
    run: EvalRun, item: Item, path: Path, latency: dict[str, Any]
) -> tuple[dict[str, Any], Curves]:
    prediction = read_prediction(path)
    min_area = float(run.postprocess.get("min_instance_area", DEFAULT_MIN_INSTANCE_AREA))
    post = imported_postresult(prediction.alpha, min_instance_area=min_area)
    return score_output(run_id=run.pk, item=item, post=post, latency=latency)


def eval_run_import(
    *,
    folder: Path,
    model_version: ModelVersion,
    dataset_version: DatasetVersion,
    user: User | None = None,
    latency_csv: str | None = None,
    latency_label: str = "latency CSV",
    device: str = "",
    os: str = "",
    runtime_label: str = "",
    compute_units: str = "",
    provenance: str = "",
    import_name: str = "",
    ignore_extra: bool = False,
    parity_of: EvalRun | None = None,
    mode: Mode = "inline",
) -> EvalRun:
    """Check the folder, then create the imported run (scored now, or by a job); see the module.

    Raises ImportRefused (every problem, naming the files) with nothing created.
    """
    labels = {"device": device, "os": os, "runtime_label": runtime_label}
    too_long = text_problems({**labels, "compute_units": compute_units, "provenance": provenance})
    if too_long:
        raise ImportRefused(too_long)
    _still_exists(model_version, dataset_version)
    checked = predictions_check(
        folder=folder,
        dataset_version=dataset_version,
        ignore_extra=ignore_extra,
        latency_csv=latency_csv,
        latency_label=latency_label,
        label=import_name or folder.name,
    )
    parity = parity_of or parity_reference(version=model_version, dataset_version=dataset_version)
    run_id: int | None = None
    try:
        with transaction.atomic():
            # Deleted while the files were read? From here the rows this run references are
            # locked: a deletion started meanwhile waits for this transaction, then fails on the
            # run's foreign keys; one that started first makes the check below refuse.
            _lock_set_version(dataset_version)
            _still_exists(model_version, dataset_version)
            run = _create_run(
                checked, model_version, dataset_version, user, parity,
                device=device, os=os, runtime_label=runtime_label, compute_units=compute_units,
                provenance=provenance, import_name=import_name or folder.name, mode=mode,
            )  # fmt: skip
            run_id = run.pk
            _stage(run, checked)
            if mode == "inline":
                _score_all(run, checked)
                eval_run_finalise(run_id=run.pk)
                run.refresh_from_db()
                if run.status != RunStatus.DONE:  # every item failed: nothing to keep
                    raise ImportRefused([f"{run.import_name}: {run.error}"])
            else:
                _create_job(run, checked, user)
    except BaseException:
        if run_id is not None:
            files.delete_prefix(run_prefix(run_id))
        raise
    return run


def primary_eligible(version: ModelVersion) -> bool:
    """Whether an imported run may be the version's primary run (reports pick primary runs).

    Only for versions no Linux worker can run — external ones, and Core ML (on-device outputs are
    the best evidence there is). A version the platform runs keeps its own worker run as primary:
    imported numbers are the importer's claim, a worker run is reproduced here.
    """
    return version.format in (ModelFormat.EXTERNAL, ModelFormat.COREML)


def _lock_set_version(dataset_version: DatasetVersion) -> None:
    """Row locks on what the run will reference, in the order a cascading deletion deletes them
    (items, attribute revisions, then the version), so the two wait for each other instead of
    deadlocking (PostgreSQL; a no-op on SQLite, which serialises writers anyway)."""
    list(Item.objects.select_for_update().filter(version=dataset_version).order_by("pk")
         .values_list("pk", flat=True))  # fmt: skip
    list(AttributeRevision.objects.select_for_update().filter(version=dataset_version)
         .order_by("pk").values_list("pk", flat=True))  # fmt: skip
    list(DatasetVersion.objects.select_for_update().filter(pk=dataset_version.pk)
         .values_list("pk", flat=True))  # fmt: skip


def _still_exists(version: ModelVersion, dataset_version: DatasetVersion) -> None:
    if not DatasetVersion.objects.filter(pk=dataset_version.pk).exists():
        raise ImportRefused(
            [f"set version {dataset_version.spec} no longer exists; choose another version"]
        )
    if not ModelVersion.objects.filter(pk=version.pk).exists():
        raise ImportRefused([f"model version {version.ref} no longer exists"])


def _create_run(
    checked: CheckedImport,
    version: ModelVersion,
    dataset_version: DatasetVersion,
    user: User | None,
    parity: EvalRun | None,
    *,
    device: str,
    os: str,
    runtime_label: str,
    compute_units: str,
    provenance: str,
    import_name: str,
    mode: Mode,
) -> EvalRun:
    digest = predictions_digest(checked.files)
    environment = start_environment()
    environment["import"] = {
        "files": len(checked.files),
        "predictions_sha256": digest,
        "notes": checked.notes,
        "ignored_extra": checked.ignored,
        "latency_rows": len(checked.latency or {}),
    }
    return EvalRun.objects.create(
        model_version=version,
        dataset_version=dataset_version,
        attribute_revision=revision_pick(version=dataset_version),
        runtime=DEFAULT_RUNTIME,
        device=device[:128],
        queue=IMPORT_QUEUE,
        postprocess={"min_instance_area": DEFAULT_MIN_INSTANCE_AREA},
        config_hash=_config_hash(version, dataset_version, digest),
        is_default_config=primary_eligible(version),
        parity_of=parity,
        chunk_size=IMPORT_CHUNK_SIZE,
        status=RunStatus.RUNNING if mode == "inline" else RunStatus.QUEUED,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        environment=environment,
        source=RunSource.IMPORTED,
        os=os[:128],
        runtime_label=runtime_label[:128],
        compute_units=compute_units[:64],
        provenance=provenance,
        import_name=import_name[:255],
        has_latency=checked.latency is not None,
    )


def _stage(run: EvalRun, checked: CheckedImport) -> None:
    """Keep the prediction files exactly as sent (the run scores these bytes)."""
    for stem, path in checked.files.items():
        files.save_file(_staged_name(run, stem), Path(path))


def _staged_name(run: EvalRun, stem: str) -> str:
    return f"{run_prefix(run.pk)}/{IMPORTED_FOLDER}/{stem}.png"


def _staged(run: EvalRun, stem: str) -> Path:
    return run_file(_staged_name(run, stem))


def _score_all(run: EvalRun, checked: CheckedImport) -> None:
    items = run.dataset_version.items.filter(stem__in=list(checked.files)).order_by("pk")
    curves = []
    for item in items:
        latency = _latency((checked.latency or {}).get(item.stem), run.device)
        fields, item_curves = _score_item(run, item, _staged(run, item.stem), latency)
        ItemResult.objects.update_or_create(run=run, item=item, defaults=fields)
        curves.append((item.pk, *item_curves))
    attempt = ItemResult._meta.get_field("attempt").get_default()  # the rows' attempt
    curves_save(run_id=run.pk, name="import", attempt=attempt, items=curves)


def _create_job(run: EvalRun, checked: CheckedImport, user: User | None) -> None:
    rows = list(
        run.dataset_version.items.filter(stem__in=list(checked.files))
        .order_by("pk")
        .values_list("pk", "stem")
    )
    latency = checked.latency or {}
    chunks: list[JsonObject] = []
    for i in range(0, len(rows), IMPORT_CHUNK_SIZE):
        part = rows[i : i + IMPORT_CHUNK_SIZE]
        chunks.append({
            "run_id": run.pk,
            "item_ids": [pk for pk, _ in part],
            "latency": {str(pk): latency[stem] for pk, stem in part if stem in latency},
        })  # fmt: skip
    run_job_attach(run, kind=IMPORT_JOB, chunks=chunks, queue=IMPORT_QUEUE)


def import_chunk_run(chunk: Chunk) -> dict[str, Any]:
    """Job-kind handler of `evals.import`: score the chunk's items in one transaction."""
    run_id = int(chunk.payload["run_id"])
    run = EvalRun.objects.select_related("dataset_version").get(pk=run_id)
    if run.status == RunStatus.CANCELLED:
        raise ChunkLost("run was cancelled")
    eval_run_mark_running(run_id=run_id)
    latency = chunk.payload.get("latency") or {}
    items = {i.pk: i for i in Item.objects.filter(pk__in=chunk.payload["item_ids"])}
    ok = 0
    curves = []
    with transaction.atomic():
        for item_id in chunk.payload["item_ids"]:
            item = items.get(item_id)
            if item is None:
                continue
            row = _latency(latency.get(str(item_id)), run.device)
            fields, item_curves = _score_item(run, item, _staged(run, item.stem), row)
            fields["attempt"] = chunk.attempts
            ItemResult.objects.update_or_create(run_id=run_id, item=item, defaults=fields)
            curves.append((item.pk, *item_curves))
            ok += 1
        curves_save(run_id=run_id, name=f"chunk-{chunk.pk}", attempt=chunk.attempts, items=curves)
    return {"ok": ok, "failed": 0, "warmups": 0, "restarts": 0, "device": run.device}
