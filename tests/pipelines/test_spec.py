"""Model spec: the contract's schema, semantic checks, typed access, preprocessing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.spec import (
    ModelSpec,
    SpecError,
    load_spec,
    parse_spec,
    preprocess,
    undo_letterbox,
    validate_spec,
)
from tests.pipelines.test_runners_models import SPEC, spec

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "contracts" / "model-spec.schema.json"
PACKAGED = Path(__file__).resolve().parents[2] / "pipelines" / "spec" / "model-spec.schema.json"


@pytest.mark.shared_data
def test_packaged_schema_is_a_verbatim_copy_of_the_contract() -> None:
    assert PACKAGED.read_bytes() == CONTRACT.read_bytes()


def test_it_accepts_the_contract_example() -> None:
    validate_spec(SPEC)
    typed = parse_spec(SPEC)
    assert typed.input.size == (512, 512) and typed.alpha.index == 0
    assert typed.confidence is not None and typed.confidence.kind == "logit"


def _mutated(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SPEC)
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["outputs"]["alpha"].pop("index"),
            "outputs.alpha: 'index' or 'name' is required",
        ),
        (
            lambda d: d.update(format="builtin"),
            "'builtin' (the name of a built-in runner) is required",
        ),
        (lambda d: d["input"].update(size=[8, 512]), "input.size[0]: 8 is less than the minimum"),
        (lambda d: d["input"].update(mean=[0.5, 0.5]), "input.mean:"),
        (lambda d: d["input"].update(std=[1, 0, 1]), "input.std[1]:"),
        (lambda d: d.update(extra=1), "unknown field(s) ('extra' was unexpected)"),
        (lambda d: d["outputs"]["alpha"].update(kind="raw"), "outputs.alpha.kind:"),
        (lambda d: d.update(spec_version=2), "spec_version:"),
    ],
)
def test_schema_errors_name_the_json_path(change: Any, message: str) -> None:
    with pytest.raises(SpecError) as err:
        validate_spec(_mutated(change))
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["outputs"]["alpha"].update(index=1), "outputs: alpha and confidence point"),
        (
            lambda d: (
                d["outputs"]["alpha"].update(name="alpha") or d["outputs"]["alpha"].pop("index")
            ),
            "outputs.alpha: torch_export outputs are a tuple without names; give 'index'",
        ),
        (lambda d: d.update(builtin="x"), "builtin: only allowed when format is 'builtin'"),
        (lambda d: d.update(format="builtin", builtin=" "), "builtin: must name a built-in runner"),
        (lambda d: d.update(format="coreml"), "input.mean: must be [0, 0, 0] for Core ML"),
        (
            lambda d: d.update(format="coreml") or d["input"].update(mean=[0, 0, 0]),
            "input.std: must be [1, 1, 1] for Core ML",
        ),
        (
            lambda d: (
                d.update(format="coreml")
                or d["input"].update(mean=[0, 0, 0], std=[1, 1, 1], scale=127.5)
            ),
            "input.scale: must be 1 or 255 for Core ML",
        ),
    ],
)
def test_semantic_checks_beyond_the_schema(change: Any, message: str) -> None:
    with pytest.raises(SpecError) as err:
        validate_spec(_mutated(change))
    assert message in str(err.value)


def test_a_coreml_spec_with_baked_normalisation_is_valid() -> None:
    doc = spec("coreml", scale=1.0, mean=[0, 0, 0], std=[1, 1, 1])
    doc["outputs"] = {"alpha": {"name": "alpha", "kind": "probability"}}
    validate_spec(doc)


def test_load_spec_names_the_file(tmp_path: Path) -> None:
    good = tmp_path / "m.pt2.spec.json"
    good.write_text(json.dumps(SPEC))
    assert isinstance(load_spec(good), ModelSpec)
    bad = tmp_path / "bad.spec.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match=r"bad\.spec\.json: not valid JSON"):
        load_spec(bad)
    with pytest.raises(SpecError, match=r"missing\.json: spec file not found"):
        load_spec(tmp_path / "missing.json")


def test_to_dict_round_trips_a_spec_built_without_raw() -> None:
    typed = parse_spec(SPEC)
    rebuilt = ModelSpec(
        format=typed.format, input=typed.input, alpha=typed.alpha, confidence=typed.confidence
    )
    validate_spec(rebuilt.to_dict())
    assert parse_spec(rebuilt.to_dict()) == typed


def test_stretch_preprocess_normalises_per_channel_in_nchw() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[..., 0] = 255
    x, info = preprocess(image, parse_spec(spec(size=64)))
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
    np.testing.assert_allclose(
        x[0, :, 10, 10], [(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225], rtol=1e-6
    )
    assert (info.top, info.left, info.height, info.width) == (0, 0, 64, 64)


def test_bgr_and_nhwc_follow_the_spec() -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., 2] = 255  # blue
    s = parse_spec(spec(size=32, color="BGR", layout="NHWC", mean=[0, 0, 0], std=[1, 1, 1]))
    x, _ = preprocess(image, s)
    assert x.shape == (1, 32, 32, 3)
    assert x[0, 0, 0].tolist() == [1.0, 0.0, 0.0]  # blue first in BGR


def test_letterbox_keeps_aspect_pads_black_and_undoes_exactly() -> None:
    image = np.full((100, 200, 3), 200, np.uint8)
    s = parse_spec(spec(size=64, resize="letterbox", mean=[0, 0, 0], std=[1, 1, 1]))
    x, info = preprocess(image, s)
    assert (info.top, info.left, info.height, info.width) == (16, 0, 32, 64)
    assert x[0, 0, :16].max() == 0 and x[0, 0, 16:48].min() == pytest.approx(200 / 255)
    alpha = np.zeros((64, 64), np.float32)
    alpha[16:48, :32] = 1.0  # left half of the photo
    back = undo_letterbox(alpha, info, (100, 200))
    assert back.shape == (100, 200)
    assert back[:, :95].min() > 0.99 and back[:, 105:].max() < 0.01


def test_preprocess_rejects_non_rgb_uint8() -> None:
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        preprocess(np.zeros((8, 8), np.uint8), parse_spec(SPEC))
