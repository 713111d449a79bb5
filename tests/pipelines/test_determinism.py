"""Per-image determinism of every runner: an image's output does not depend on what ran before it.

The GrabCut history case: OpenCV's RNG state carried over between GrabCut calls, so a
photo processed after a different set of photos came out different. These tests process the same
photo after different histories (other photos, a perturbed RNG, a fresh runner, other thread
counts) and demand identical bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.postprocess.cutout import encode_png
from pipelines.postprocess.pipeline import postprocess
from pipelines.runners import make_runner
from pipelines.runners.builtin import GRABCUT_ITERATIONS, builtin_spec
from pipelines.runners.determinism import image_seed
from pipelines.runners.images import load_image_rgb

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "fixtures" / "models"
PHOTOS = sorted((ROOT / "fixtures" / "sets" / "pascal-s-demo" / "images").iterdir())[:4]
CANDIDATES = sorted(p.name for p in MODELS.glob("*.pt2"))


def digest(alpha: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(alpha).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [load_image_rgb(p) for p in PHOTOS]


def test_image_seed_follows_the_pixels() -> None:
    a = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert image_seed(a) == image_seed(a.copy())
    assert image_seed(a) != image_seed(a[::-1].copy())
    assert image_seed(a) != image_seed(a.reshape(4, 12))  # same bytes, other shape
    assert 0 <= image_seed(a) < 2**31


def test_grabcut_rng_matters_for_these_photos(photos: list[np.ndarray]) -> None:
    """Guard: without a seed GrabCut's output follows OpenCV's RNG state on these photos, so the
    history test below would fail if the runner stopped seeding."""
    photo = cv2.resize(photos[0], (128, 128), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
    outputs = set()
    for state in (1, 2, 3):
        mask = np.full((128, 128), cv2.GC_PR_BGD, np.uint8)
        mask[32:96, 32:96] = cv2.GC_PR_FGD
        mask[56:72, 56:72] = cv2.GC_FGD
        mask[:4], mask[-4:] = cv2.GC_BGD, cv2.GC_BGD
        cv2.setRNGSeed(state)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(bgr, mask, None, bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]
        outputs.add(digest(bgd) + digest(fgd))
    assert len(outputs) > 1


def test_grabcut_output_does_not_depend_on_images_processed_before(
    photos: list[np.ndarray],
) -> None:
    """GrabCut once drew from the RNG state earlier photos left: photo X alone, after other photos,
    after a disturbed RNG must give the same bytes."""
    x, others = photos[0], photos[1:]
    runner = make_runner(None, builtin_spec(), "builtin")
    alone = runner.predict(x)
    for other in others:
        runner.predict(other)
    after_others = runner.predict(x)
    cv2.setRNGSeed(987654)
    cv2.randu(np.empty((64, 64), np.float32), 0, 1)  # any draw moves the state on
    after_draw = make_runner(None, builtin_spec(), "builtin").predict(x)
    assert digest(alone.alpha) == digest(after_others.alpha) == digest(after_draw.alpha)
    assert alone.confidence == after_others.confidence == after_draw.confidence
    # ...and different photos still give different outputs (the seed follows the photo)
    assert digest(runner.predict(others[0]).alpha) != digest(alone.alpha)


def test_builtin_and_postprocessing_ignore_the_opencv_thread_count(
    photos: list[np.ndarray],
) -> None:
    spec = builtin_spec()
    saved = cv2.getNumThreads()
    pngs = []
    try:
        for threads in (1, 2):
            cv2.setNumThreads(threads)
            raw = make_runner(None, spec, "builtin").predict(photos[1])
            post = postprocess(raw.alpha, raw.confidence, photos[1], spec, upsample="guided")
            pngs.append(encode_png(post.alpha_png))
    finally:
        cv2.setNumThreads(saved)
    assert pngs[0] == pngs[1]


@pytest.mark.parametrize("name", CANDIDATES)
def test_shipped_candidate_gives_the_same_alpha_in_any_order_and_runner(
    name: str, photos: list[np.ndarray]
) -> None:
    spec = json.loads((MODELS / f"{name}.spec.json").read_text())
    first = make_runner(MODELS / name, spec, "cpu", threads=1)
    forward = [digest(first.predict(p).alpha) for p in photos]
    again = make_runner(MODELS / name, spec, "cpu", threads=1)
    backward = [digest(again.predict(p).alpha) for p in reversed(photos)][::-1]
    assert forward == backward
    assert len(set(forward)) == len(photos)
    determinism = first.describe()["determinism"]
    assert determinism["deterministic"] is True and "threads" in determinism["note"]


def test_onnx_child_is_identical_across_thread_counts_and_order(
    tmp_path: Path, photos: list[np.ndarray]
) -> None:
    from pipelines.convert.to_onnx import export_onnx

    parent = json.loads((MODELS / "subject-lift-1.0.0.pt2.spec.json").read_text())
    onnx_path = tmp_path / "child.onnx"
    child = export_onnx(MODELS / "subject-lift-1.0.0.pt2", parent, onnx_path)
    one = make_runner(onnx_path, child, "onnx-cpu", threads=1)
    two = make_runner(onnx_path, child, "onnx-cpu", threads=2)
    assert [digest(one.predict(p).alpha) for p in photos] == [
        digest(two.predict(p).alpha) for p in reversed(photos)
    ][::-1]
    assert one.describe()["determinism"]["deterministic"] is True


def test_run_to_run_noise_per_metric() -> None:
    from pipelines.stats.noise import run_to_run_noise

    first = {"iou": [0.5, 0.75, float("nan"), 1.0], "mae": [0.1, 0.2, 0.3, 0.4]}
    second = {"iou": [0.5, 0.5, 0.9, 1.0], "mae": [0.1, 0.2, 0.3, 0.4], "extra": [1, 2, 3, 4]}
    noise = run_to_run_noise(first, second)
    assert set(noise) == {"iou", "mae"}
    iou = noise["iou"]
    assert (iou.n, iou.changed) == (3, 1)  # the NaN pair is left out
    assert iou.max_abs_item_delta == pytest.approx(0.25)
    assert iou.mean_abs_item_delta == pytest.approx(0.25 / 3)
    means = np.mean([0.5, 0.75, 1.0]), np.mean([0.5, 0.5, 1.0])
    assert iou.mean_delta == pytest.approx(abs(means[0] - means[1]))
    assert not iou.identical and noise["mae"].identical
    assert noise["mae"].max_abs_item_delta == 0.0


def test_noise_refuses_misaligned_runs_and_handles_empty() -> None:
    from pipelines.stats.noise import metric_noise

    with pytest.raises(ValueError, match="iou: the two runs have 2 and 3 values"):
        metric_noise("iou", [1, 2], [1, 2, 3])
    empty = metric_noise("iou", [float("nan")], [0.5])
    assert empty.n == 0 and np.isnan(empty.max_abs_item_delta) and not empty.identical


def test_delta_within_noise() -> None:
    from pipelines.stats.noise import delta_within_noise

    assert delta_within_noise(0.003, [0.002, 0.0015]) is True
    assert delta_within_noise(-0.004, [0.002, 0.0015]) is False
    assert delta_within_noise(0.0, [0.0, 0.0]) is True
    assert delta_within_noise(1e-9, [0.0, 0.0]) is False  # identical reproductions: any delta
    assert delta_within_noise(0.001, [0.002, None]) is None  # one run never reproduced
    assert delta_within_noise(float("nan"), [0.1]) is None
