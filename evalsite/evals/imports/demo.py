"""`make demo` step: one imported run, labelled honestly as produced by the demo.

`subject-lift:1.1.0`'s ONNX child (converted here if the registry does not have it yet) predicts
the `pascal-s-demo` set with `python -m pipelines.predict --runtime onnx-cpu` in a subprocess on
this machine, standing in for a device; the folder and the latency CSV from its JSON report are
imported with `eval_run_import`, exactly as a model team would import a phone's outputs. Parity is
against 1.1.0's primary worker run. Idempotent: an existing imported run of the child on the set
version is reused.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from django.conf import settings

from evalsite.core.tempdirs import temp_folder
from evalsite.datasets.errors import VersionSpecError
from evalsite.datasets.models import DatasetVersion
from evalsite.datasets.selectors import dataset_version_resolve
from evalsite.datasets.storage import item_file
from evalsite.evals.errors import EvalError
from evalsite.evals.imports.services import eval_run_import
from evalsite.evals.models import EvalRun, RunSource, RunStatus
from models.errors import ConversionFailed, RegistryError
from models.files import version_file
from models.models import ModelFormat, ModelVersion, VersionStatus
from pipelines.imports import latency_csv_from_report

FAMILY = "subject-lift"
SOURCE_VERSION = "1.1.0"
DEMO_SET = "pascal-s-demo"
PROVENANCE = (
    "produced by the demo with onnxruntime on this machine, standing in for a device: "
    "`python -m pipelines.predict --runtime onnx-cpu` with the ONNX child of subject-lift:1.1.0"
)
#: The demo gives up on predicting after this long (the demo set takes ~1 min on one CPU).
PREDICT_TIMEOUT_SECONDS = 1800

Log = Callable[[str], object]


def _onnx_child(log: Log) -> ModelVersion | None:
    source = ModelVersion.objects.filter(
        family__name=FAMILY, version=SOURCE_VERSION, status=VersionStatus.READY
    ).first()
    if source is None:
        log(f"    skipped: {FAMILY}:{SOURCE_VERSION} is not registered and ready")
        return None
    child = source.children.filter(format=ModelFormat.ONNX, status=VersionStatus.READY).first()
    if child is not None:
        return child
    from models.services import model_version_convert_now

    log(f"    converting {source.ref} to ONNX")
    try:
        child = model_version_convert_now(source_id=source.pk, target="onnx", user=None)
    except (ConversionFailed, RegistryError) as exc:
        log(f"    skipped: ONNX conversion failed: {exc}")
        return None
    return child if child.status == VersionStatus.READY else None


def _predict(child: ModelVersion, dv: DatasetVersion, work: Path) -> dict[str, object]:
    photos, out = work / "photos", work / "alpha"
    photos.mkdir()
    for item in dv.items.all():
        suffix = Path(item.image.name or "").suffix
        shutil.copyfile(item_file(item.image), photos / f"{item.stem}{suffix}")
    spec = work / "model.spec.json"
    spec.write_text(json.dumps(child.spec))
    report = work / "report.json"
    command = [
        sys.executable, "-m", "pipelines.predict", "--model", str(version_file(child)),
        "--spec", str(spec), "--images", str(photos), "--out", str(out),
        "--runtime", "onnx-cpu", "--json", str(report),
    ]  # fmt: skip
    subprocess.run(
        command,
        check=True,
        cwd=settings.BASE_DIR,
        capture_output=True,
        timeout=PREDICT_TIMEOUT_SECONDS,
    )
    loaded: dict[str, object] = json.loads(report.read_text())
    return loaded


def import_demo_run(log: Log) -> EvalRun | None:
    log("==> importing an on-device run (demo stand-in: onnxruntime on this machine)")
    try:
        dv = dataset_version_resolve(DEMO_SET)
    except VersionSpecError as exc:
        log(f"    skipped: {exc}")
        return None
    child = _onnx_child(log)
    if child is None:
        return None
    existing = EvalRun.objects.filter(
        model_version=child, dataset_version=dv, source=RunSource.IMPORTED, status=RunStatus.DONE
    ).first()
    if existing is not None:
        log(f"    run #{existing.pk}: {child.ref} imported on {dv.spec} (unchanged)")
        return existing
    with temp_folder("demo-device-") as tmp:
        work = Path(tmp)
        try:
            report = _predict(child, dv, work)
        except (subprocess.SubprocessError, OSError) as exc:
            stderr = getattr(exc, "stderr", b"") or b""
            log(f"    skipped: predict failed: {exc} {stderr.decode(errors='replace')[-500:]}")
            return None
        try:
            run = eval_run_import(
                folder=work / "alpha",
                model_version=child,
                dataset_version=dv,
                latency_csv=latency_csv_from_report(report),
                latency_label="latency CSV from the predict --json report",
                device=f"{platform.node()} CPU (demo stand-in for a device)",
                os=platform.platform(),
                runtime_label=f"onnxruntime {_version('onnxruntime')} (CPUExecutionProvider)",
                compute_units="CPU",
                provenance=PROVENANCE,
                import_name="demo: pipelines.predict --out",
            )
        except EvalError as exc:
            log(f"    skipped: import refused: {exc}")
            return None
    parity = run.summary.get("parity") or {}
    line = f"    run #{run.pk}: {child.ref} imported on {dv.spec}, mean IoU "
    line += f"{run.summary['metrics']['iou']:.4f}"
    if parity:
        line += f"; parity with run #{parity['against_run']}: min IoU {parity['min_iou']:.4f}, "
        line += f"max abs diff {parity['max_abs_diff']:.4f}"
    log(line)
    return run


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"
