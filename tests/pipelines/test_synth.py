"""Tests for pipelines.synth: exact masks, determinism, label balance, negatives, sizes and CLI."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.synth import (
    GENDERS,
    MANIFEST_COLUMNS,
    MONK_HEX,
    PersonSpec,
    bg_luminance_spread,
    composite,
    composite_subjects,
    contrast_by_tone,
    draw_person,
    generate,
    make_negative,
    monk_rgb,
)
from pipelines.synth.backgrounds import background_crop
from pipelines.synth.monk import GENDER_VALUES, SKIN_TONE_VALUES

REPO = Path(__file__).resolve().parents[2]
SOD = REPO.parent / "shared" / "data" / "sod"
NO_JITTER = dict(flip=0.0, brightness=0.0, contrast=0.0, saturation=0.0, white_balance=0.0)


def _write(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), arr)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Tiny fg folder (images/ + masks/) and a plain-image bg folder, built from noise."""
    root = tmp_path_factory.mktemp("src")
    rng = np.random.default_rng(0)
    for i in range(5):
        img = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        mask = np.zeros((60, 80), np.uint8)
        cv2.ellipse(mask, (40, 30), (12 + 3 * i, 20), 0, 0, 360, 255, -1)
        _write(root / "fg" / "images" / f"{i:03d}.jpg", img)
        _write(root / "fg" / "masks" / f"{i:03d}.png", mask)
    for i in range(4):
        base = np.linspace(30 + 40 * i, 200, 96, dtype=np.float32)[None, :, None]
        img = np.clip(base + rng.normal(0, 20, (72, 96, 3)), 0, 255).astype(np.uint8)
        _write(root / "bg" / f"b{i}.jpg", img)
    return root / "fg", root / "bg"


def _manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _read_mask(path: Path) -> np.ndarray:
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert m is not None and m.dtype == np.uint8 and m.ndim == 2
    return m


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- exact masks ----------------------------------------------------------------------------------


def test_composite_mask_is_exactly_where_foreground_was_written() -> None:
    rng = np.random.default_rng(1)
    bg = np.zeros((90, 120, 3), np.uint8)
    bg[..., 2] = rng.integers(0, 200, (90, 120), dtype=np.uint8)  # blue-only noise
    fg = np.full((50, 40, 3), (250, 30, 0), np.uint8)  # red: never equal to a bg pixel
    fg_mask = np.zeros((50, 40), np.uint8)
    cv2.circle(fg_mask, (20, 25), 17, 255, -1)
    image, mask = composite(fg, fg_mask, bg, np.random.default_rng(7))
    changed = (image != bg).any(axis=2)
    assert set(np.unique(mask)) <= {0, 255} and mask.any()
    np.testing.assert_array_equal(changed, mask == 255)
    assert image[mask == 255][:, 2].max() < 60 and image[mask == 255][:, 0].min() > 200


def test_instance_masks_are_disjoint_visible_parts_in_paste_order() -> None:
    bg = np.zeros((100, 100, 3), np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    subjects = [
        (np.full((40, 40, 3), c, np.uint8), np.full((40, 40), 255, np.uint8)) for c in colours
    ]
    # Large subjects on a small canvas overlap; seed 3 keeps all three (each partly hidden).
    res = composite_subjects(
        subjects, bg, np.random.default_rng(3), scale=(0.5, 0.6), min_visible=0.05, **NO_JITTER
    )
    assert res.kept == [0, 1, 2] and len(res.instances) == 3
    union = np.zeros((100, 100), bool)
    for inst, k in zip(res.instances, res.kept, strict=True):
        assert not (union & inst).any(), "instances overlap"
        union |= inst
        # Where instance k is visible the image shows subject k's colour, nowhere else does it.
        np.testing.assert_array_equal(inst, (res.image == colours[k]).all(axis=2))
    np.testing.assert_array_equal(union, res.mask == 255)


def test_fully_hidden_subject_is_dropped_not_left_as_an_empty_instance() -> None:
    bg = np.zeros((80, 80, 3), np.uint8)
    small = (np.full((10, 10, 3), 255, np.uint8), np.full((10, 10), 255, np.uint8))
    big = (np.full((40, 40, 3), 128, np.uint8), np.full((40, 40), 255, np.uint8))
    res = composite_subjects(
        [small, big],
        bg,
        np.random.default_rng(0),
        scale=(0.5, 0.5),
        position=(0.5, 0.5),
        **NO_JITTER,
    )
    assert res.kept == [1] and len(res.instances) == 1
    assert not (res.image == 255).all(axis=2).any()


def test_draw_person_mask_is_exactly_the_painted_pixels() -> None:
    bg = np.zeros((240, 180, 3), np.uint8)
    bg[..., 1] = 255  # pure green: no skin, hair or (saturation ≤ 230) clothing colour equals it
    for tone, gender in [(1, "woman"), (10, "man"), (6, "other")]:
        spec = PersonSpec(tone=tone, gender=gender, hair="long", strands=20, sleeves="short")
        image, mask = draw_person(bg, spec, np.random.default_rng(tone))
        np.testing.assert_array_equal((image != bg).any(axis=2), mask == 255)
        skin = (np.abs(image.astype(int) - monk_rgb(tone)).max(axis=2) <= 25) & (mask == 255)
        assert skin.sum() > 300, f"tone {tone}: skin pixels should stay near the Monk swatch"


def test_monk_swatches_match_the_published_hex_values() -> None:
    assert MONK_HEX[1] == "#f6ede4" and MONK_HEX[10] == "#292420"
    assert monk_rgb(5) == (0xD7, 0xBD, 0x96)
    with pytest.raises(ValueError):
        monk_rgb(11)


# --- generation -----------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_other_seed_differs(folders, tmp_path) -> None:
    fg, bg = folders
    a = generate(fg, bg, tmp_path / "a", n=12, seed=5, people=4, negatives=3)
    b = generate(fg, bg, tmp_path / "b", n=12, seed=5, people=4, negatives=3)
    c = generate(fg, bg, tmp_path / "c", n=12, seed=6, people=4, negatives=3)
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert len(fa) >= 12 * 2 + 2
    assert fa == fb
    differing = [k for k in fa if k.startswith("images/") and fa[k] != fc.get(k)]
    assert len(differing) >= 10


def test_manifest_columns_vocabularies_and_paths(folders, tmp_path) -> None:
    fg, bg = folders
    out = generate(fg, bg, tmp_path / "o", n=14, seed=2, people=5, negatives=4)
    rows = _manifest(out)
    assert list(rows[0].keys()) == list(MANIFEST_COLUMNS) and len(rows) == 14
    for r in rows:
        assert r["skin_tone"] in SKIN_TONE_VALUES and r["perceived_gender"] in GENDER_VALUES
        assert (out / r["image"]).is_file() and (out / r["mask"]).is_file()
        assert "synthetic" in r["tags"].split(";") and r["source"].startswith("synthetic:")
        assert r["licence"]
        m = _read_mask(out / r["mask"])
        assert set(np.unique(m)) <= {0, 255}
        assert (int(r["width"]), int(r["height"])) == (m.shape[1], m.shape[0])
    kinds = [r["kind"] for r in rows]
    assert kinds.count("composite") == 5 and kinds.count("person") == 5
    comp = [r for r in rows if r["kind"] == "composite"]
    assert all(r["skin_tone"] == r["perceived_gender"] == "unknown" for r in comp)
    neg = [r for r in rows if r["kind"] == "negative"]
    assert any(r["licence"] == "generated" for r in neg)  # procedural: nothing inherited
    readme = (out / "README.md").read_text()
    assert "synthetic" in readme.lower() and "--seed 2" in readme


def test_multi_subject_items_have_instance_masks_that_partition_the_mask(folders, tmp_path) -> None:
    fg, bg = folders
    out = generate(fg, bg, tmp_path / "o", n=16, seed=1, image_format="png")
    multi = [r for r in _manifest(out) if "multi" in r["tags"].split(";")]
    assert multi, "seed 1 with 16 composites is known to contain multi-subject items"
    for r in _manifest(out):
        if r not in multi:
            assert r["instances"] == ""
    for r in multi:
        mask = _read_mask(out / r["mask"]) == 255
        files = sorted((out / r["instances"]).glob("*.png"))
        assert len(files) == int(r["n_subjects"]) >= 2
        union = np.zeros_like(mask)
        for f in files:
            inst = _read_mask(f) == 255
            assert inst.any() and not (inst & union).any()
            union |= inst
        np.testing.assert_array_equal(union, mask)


def test_people_cycle_all_tones_and_genders_evenly(folders, tmp_path) -> None:
    fg, bg = folders
    out = generate(fg, bg, tmp_path / "o", n=30, seed=3, people=30)
    rows = _manifest(out)
    tones = [r["skin_tone"] for r in rows]
    assert {t: tones.count(t) for t in set(tones)} == {str(t): 3 for t in range(1, 11)}
    genders = [r["perceived_gender"] for r in rows]
    assert {g: genders.count(g) for g in GENDERS} == {g: 10 for g in GENDERS}
    for r in rows:
        assert "synthetic_labels" in r["tags"].split(";") and r["attribute_source"] == "synthetic"
        assert float(r["contrast"]) >= 0 and float(r["contrast_ratio"]) >= 1


def test_background_luminance_distribution_is_the_same_for_every_tone(folders, tmp_path) -> None:
    fg, bg = folders
    out = generate(fg, bg, tmp_path / "o", n=40, seed=4, people=40)
    summary = contrast_by_tone(out / "manifest.csv")
    assert set(summary) == {str(t) for t in range(1, 11)}
    assert bg_luminance_spread(summary) < 1.5  # L* units; strata share targets and crops
    stds = [s.bg_luminance_std for s in summary.values()]
    assert max(stds) - min(stds) < 1.5
    # Contrast is not balanced (and should not be): it is recorded so reports can show it.
    assert all(s.contrast_mean == s.contrast_mean for s in summary.values())


def test_negatives_have_empty_masks_and_not_applicable_labels(folders, tmp_path) -> None:
    fg, bg = folders
    out = generate(fg, bg, tmp_path / "o", n=6, seed=9, negatives=6)
    rows = _manifest(out)
    assert {r["kind"] for r in rows} == {"negative"}
    for r in rows:
        assert not _read_mask(out / r["mask"]).any()
        assert r["skin_tone"] == r["perceived_gender"] == "not_applicable"
        assert "no_subject" in r["tags"].split(";")
    assert {"background", "procedural"} <= {t for r in rows for t in r["tags"].split(";")}


def test_background_negatives_take_each_source_once_per_pass_and_are_all_different(
    folders, tmp_path
) -> None:
    """Ten background negatives from five masked photos: each photo once, then each mirrored
    once; no two images alike (drawn at random, a photo came up twice and, cropped at its
    natural size, gave the same image twice, which an import skips as a duplicate)."""
    fg, _ = folders  # the bg folder has no masks: background negatives come from fg
    out = generate(fg, None, tmp_path / "o", n=20, seed=4, negatives=20)
    rows = [r for r in _manifest(out) if "background" in r["tags"].split(";")]
    assert len(rows) == 10
    first = sorted(r["source"] for r in rows if " mirrored " not in r["source"])
    mirrored = [r["source"] for r in rows if " mirrored " in r["source"]]
    second = sorted(source.replace(" mirrored", "") for source in mirrored)
    assert len(first) == len(set(first)) == 5 and first == second
    images = [(out / r["image"]).read_bytes() for r in _manifest(out)]
    assert len(set(images)) == len(images)


def test_negative_kinds_and_background_crop_avoids_the_salient_object() -> None:
    rng = np.random.default_rng(0)
    for kind in ("noise", "gradient", "stripes"):
        img, k = make_negative((64, 48), rng, kind)
        assert k == kind and img.shape == (48, 64, 3) and img.dtype == np.uint8
    src = np.full((120, 160, 3), 90, np.uint8)
    obj = np.zeros((120, 160), bool)
    obj[20:100, 50:110] = True
    src[obj] = (255, 0, 0)
    crop, _ = background_crop(src, obj, (80, 60), rng)
    assert crop.shape == (60, 80, 3) and crop[..., 0].max() < 150  # no object colour survived


def test_phone_resolution_size(folders, tmp_path) -> None:
    fg, bg = folders
    out = generate(fg, bg, tmp_path / "o", n=1, seed=1, size=(3024, 4032))
    r = _manifest(out)[0]
    img = cv2.imread(str(out / r["image"]))
    assert img.shape == (4032, 3024, 3) and _read_mask(out / r["mask"]).shape == (4032, 3024)


# --- CLI and packaging ----------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.synth", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_exits_2_with_a_clear_message_on_missing_fg(tmp_path) -> None:
    proc = _cli(
        "--fg", str(tmp_path / "nope"), "--n", "2", "--seed", "1", "--out", str(tmp_path / "o")
    )
    assert proc.returncode == 2
    assert "--fg folder not found" in proc.stderr and str(tmp_path / "nope") in proc.stderr


def test_cli_generates_and_refuses_a_non_empty_out(folders, tmp_path) -> None:
    fg, bg = folders
    args = [
        "--fg",
        str(fg),
        "--bg",
        str(bg),
        "--n",
        "3",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "o"),
        "--people",
        "1",
        "--negatives",
        "1",
        "--size",
        "64x48",
    ]
    assert _cli(*args).returncode == 0
    assert len(_manifest(tmp_path / "o")) == 3
    again = _cli(*args)
    assert again.returncode == 2 and "not empty" in again.stderr
    assert _cli(*args, "--overwrite").returncode == 0
    too_many = _cli(*args[:-6], "--people", "3", "--negatives", "1", "--overwrite")
    assert too_many.returncode == 2 and "exceed --n" in too_many.stderr


def test_pipelines_synth_imports_without_django_or_celery() -> None:
    code = (
        "import sys, pipelines.synth, pipelines.synth.cli; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'celery')]; "
        "assert not bad, bad"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


# --- shared data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sod() -> Path:
    if not SOD.is_dir():
        pytest.skip(f"shared data folder {SOD} is absent")
    return SOD


@pytest.mark.shared_data
def test_sod_composites_inherit_licence_and_keep_exact_masks(sod, tmp_path) -> None:
    out = generate(
        sod, None, tmp_path / "o", n=8, seed=1, people=2, negatives=2, image_format="png"
    )
    rows = _manifest(out)
    for r in rows:
        m = _read_mask(out / r["mask"])
        assert set(np.unique(m)) <= {0, 255}
        assert max(m.shape) <= 640
        if r["kind"] != "negative" or "background" in r["tags"]:
            assert r["licence"] == "research only (derived from BSDS500)"
        if r["kind"] == "composite":
            assert r["source"].startswith("synthetic: fg=sod/") and " bg=sod/" in r["source"]
    assert sum(1 for r in rows if r["kind"] == "composite") == 4


@pytest.mark.shared_data
def test_real_foreground_composite_mask_matches_written_pixels(sod) -> None:
    from pipelines.synth.sources import list_fg_folder, load

    item = list_fg_folder(sod).items[0]
    fg, fg_mask = load(item)
    bg = np.zeros((321, 481, 3), np.uint8)
    bg[..., 1] = 255  # nothing in a natural photo is exactly pure green… verify, then test
    assert not (fg == (0, 255, 0)).all(axis=2).any()
    image, mask = composite(fg, fg_mask, bg, np.random.default_rng(0))
    np.testing.assert_array_equal((image != bg).any(axis=2), mask == 255)


def test_groups_write_disjoint_visible_instances_whose_union_is_the_mask(tmp_path: Path) -> None:
    from pipelines.synth.groups import MIN_VISIBLE, generate_groups

    a, b = tmp_path / "a", tmp_path / "b"
    generate_groups(a, 4, seed=3, size=(160, 120))
    generate_groups(b, 4, seed=3, size=(160, 120))
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)  # byte-identical
    for row in csv.DictReader((a / "manifest.csv").open()):
        mask = cv2.imread(str(a / row["mask"]), cv2.IMREAD_GRAYSCALE) > 127
        inst = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 127
                for p in sorted((a / row["instances"]).glob("*.png"))]  # fmt: skip
        assert 2 <= len(inst) == int(row["n_subjects"]) <= 4
        assert np.array_equal(np.logical_or.reduce(inst), mask)
        assert sum(int(m.sum()) for m in inst) == int(mask.sum())  # disjoint
        assert all(m.sum() > 0 for m in inst) and MIN_VISIBLE > 0
