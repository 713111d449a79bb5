"""Conversions to ONNX and Core ML, checked numerically / structurally on Linux."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from pipelines.convert import check_coreml_normalisation, convert_coreml, export_onnx
from pipelines.convert.common import load_program
from pipelines.convert.to_coreml import (
    ImageNormalisation,
    build_mlmodel,
    coreml_normalisation,
    save_zipped,
)
from pipelines.convert.to_onnx import onnx_metadata, verify_onnx
from pipelines.sandbox import validate_model
from pipelines.spec import parse_spec, validate_spec
from tests.pipelines.test_runners_models import TinyNet, save_pt2, spec

MODELS = Path(__file__).resolve().parents[2] / "fixtures" / "models"
# The better shipped candidate first; any shipped one beats random weights.
CANDIDATES = (MODELS / "subject-lift-1.1.0.pt2", MODELS / "subject-lift-1.0.0.pt2")
SMALL = 64


@pytest.fixture(scope="module")
def tiny_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_pt2(TinyNet(), tmp_path_factory.mktemp("convert") / "tiny.pt2", SMALL)


def test_onnx_export_matches_torch_and_yields_a_valid_child(tiny_pt2: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.onnx"
    child = export_onnx(tiny_pt2, spec(size=SMALL), out, source_version="1.0.0")
    validate_spec(child)
    assert child["format"] == "onnx"
    assert child["outputs"]["alpha"] == {"name": "alpha", "kind": "probability"}
    parent = parse_spec(spec(size=SMALL))
    diff = verify_onnx(load_program(tiny_pt2).module(), out, parent, seed=7)
    assert diff < 1e-4
    meta = onnx_metadata(out)
    assert meta["source_version"] == "1.0.0" and len(meta["source_sha256"]) == 64
    assert float(meta["verification_max_abs_diff"]) < 1e-4
    report = validate_model(out, child, memory_mb=3072, cpu_seconds=60, timeout_s=60)
    assert report.ok, report.reason


def test_coreml_conversion_bakes_normalisation_and_records_lineage(
    tiny_pt2: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tiny.mlpackage.zip"
    child = convert_coreml(tiny_pt2, spec(size=SMALL), out, source_version="1.0.0")
    validate_spec(child)
    assert child["input"]["mean"] == [0.0, 0.0, 0.0] and child["input"]["std"] == [1.0, 1.0, 1.0]
    assert child["input"]["scale"] == 1.0 and child["format"] == "coreml"
    with zipfile.ZipFile(out) as zf:
        assert "tiny.mlpackage/Manifest.json" in zf.namelist()
    check = check_coreml_normalisation(out, spec(size=SMALL))
    assert check.ok, check.reason
    assert check.max_abs_diff <= 1e-6

    import coremltools as ct

    from pipelines.formats import find_mlpackage, safe_extract

    package = find_mlpackage(safe_extract(out, tmp_path / "x"))
    model_spec = ct.utils.load_spec(str(package))
    meta = dict(model_spec.description.metadata.userDefined)
    assert meta["source_version"] == "1.0.0" and len(meta["source_sha256"]) == 64
    assert json.loads(meta["parent_spec"])["format"] == "torch_export"
    outputs = {o.name: o.type.WhichOneof("Type") for o in model_spec.description.output}
    assert outputs == {"alpha": "multiArrayType", "confidence": "multiArrayType"}


def test_normalisation_check_catches_a_wrong_bias(tiny_pt2: Path, tmp_path: Path) -> None:
    parent = parse_spec(spec(size=SMALL))
    right = coreml_normalisation(parent)
    wrong = ImageNormalisation(right.scale, (right.bias[0] + 0.01, *right.bias[1:]), right.divisor)
    path = save_zipped(
        build_mlmodel(load_program(tiny_pt2).module(), parent, normalisation=wrong),
        tmp_path / "wrong.mlpackage.zip",
    )
    check = check_coreml_normalisation(path, parent)
    assert not check.ok
    assert check.max_abs_diff == pytest.approx(0.01 / 0.229, rel=1e-3)
    assert "differs from the parent spec" in check.reason


def test_equal_std_folds_entirely_into_the_image_scale_and_bias() -> None:
    parent = parse_spec(spec(size=SMALL, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]))
    norm = coreml_normalisation(parent)
    assert norm.divisor is None
    assert norm.scale == pytest.approx(1 / 127.5) and norm.bias == (-1.0, -1.0, -1.0)


def _reference_model(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A shipped candidate when present, else the reference net (small, random weights)."""
    for fixture in CANDIDATES:
        sidecar = fixture.with_name(fixture.name + ".spec.json")
        if fixture.exists() and sidecar.exists():
            return fixture, json.loads(sidecar.read_text())
    from pipelines.reference.export import export_program, make_spec
    from pipelines.reference.model import build_model

    torch.manual_seed(0)
    path = tmp_path / "reference.pt2"
    torch.export.save(export_program(build_model("small").eval()), str(path))
    return path, make_spec("reference.card.md", [])


def test_the_reference_candidate_converts_to_a_valid_coreml_package(tmp_path: Path) -> None:
    src, parent = _reference_model(tmp_path)
    validate_spec(parent)
    out = tmp_path / "candidate.mlpackage.zip"
    started = time.perf_counter()
    child = convert_coreml(src, parent, out, source_version="1.1.0")
    seconds = time.perf_counter() - started
    validate_spec(child)
    assert child["training"] == parent.get("training")
    check = check_coreml_normalisation(out, parent)
    assert check.ok, check.reason
    assert seconds < 120, f"conversion took {seconds:.0f} s"


def test_the_check_accepts_the_coreml_versions_own_spec_via_recorded_lineage(
    tiny_pt2: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tiny.mlpackage.zip"
    child = convert_coreml(tiny_pt2, spec(size=SMALL), out)
    # The registry only has the Core ML version's own spec at hand: identity normalisation.
    check = check_coreml_normalisation(out, child)
    assert check.ok and check.max_abs_diff <= 1e-6, check.reason
