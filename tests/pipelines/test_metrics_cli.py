"""`python -m pipelines.metrics` end to end (metrics.md, "The command" and "Inputs")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from pipelines.metrics import evaluate_pair
from pipelines.metrics.cli import main
from pipelines.metrics.functional import CURVE_KEYS, SCALAR_KEYS
from pipelines.metrics.io import read_gray8

ROOT = Path(__file__).resolve().parents[2]


def _mask(seed: int, h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = np.zeros((h, w), np.uint8)
    centre = (int(rng.integers(20, 44)), int(rng.integers(15, 33)))
    cv2.ellipse(gt, centre, (15, 10), float(rng.integers(0, 180)), 0, 360, 255, -1)
    pred = cv2.GaussianBlur(np.roll(gt, int(rng.integers(-3, 4)), 1), (0, 0), 2)
    return pred, gt


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Three good pairs a, b, c."""
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    for i, name in enumerate("abc"):
        pred, gt = _mask(i)
        Image.fromarray(pred).save(pred_dir / f"{name}.png")
        Image.fromarray(gt).save(gt_dir / f"{name}.png")
    return pred_dir, gt_dir


def run(pred_dir: Path, gt_dir: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    argv = ["--pred", str(pred_dir), "--gt", str(gt_dir), "--json", str(out), *extra]
    code = main(argv)
    return code, json.loads(out.read_text())


def run_subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.metrics", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_it_writes_the_documented_json_and_exits_0(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out.json"
    proc = run_subprocess("--pred", str(dirs[0]), "--gt", str(dirs[1]), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert set(doc) == {"summary", "per_image", "curves", "errors", "settings"}
    assert list(doc["summary"]) == list(SCALAR_KEYS)
    # the cutout-quality keys of metrics.md ("Alpha-matte and boundary metrics")
    assert {"sad", "mse_alpha", "grad", "conn", "boundary_iou"} <= set(doc["summary"])
    assert [row["name"] for row in doc["per_image"]] == ["a", "b", "c"]
    assert all(list(row) == ["name", *SCALAR_KEYS] for row in doc["per_image"])
    assert set(doc["curves"]) == set(CURVE_KEYS)
    assert all(len(curve) == 256 for curve in doc["curves"].values())
    assert doc["errors"] == []
    settings = doc["settings"]
    assert settings["threshold"] == 0.5 and settings["gt_rule"] == ">127"
    assert {"numpy", "opencv", "pillow", "python", "pipelines.metrics"} <= set(settings["versions"])
    # The numbers are the in-process ones.
    pred, gt = _mask(1)
    expected = evaluate_pair(pred, gt)
    assert doc["per_image"][1] == {"name": "b", **{k: expected[k] for k in SCALAR_KEYS}}
    ious = [row["iou"] for row in doc["per_image"]]
    assert doc["summary"]["iou"] == pytest.approx(np.mean(ious))


def test_missing_partners_are_errors_excluded_from_the_summary(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    pred_dir, gt_dir = dirs
    (gt_dir / "c.png").unlink()
    Image.fromarray(_mask(5)[1]).save(gt_dir / "d.png")
    code, doc = run(pred_dir, gt_dir, tmp_path / "out.json")
    assert code == 1
    assert [e["name"] for e in doc["errors"]] == ["c", "d"]
    assert "no ground truth" in doc["errors"][0]["error"]
    assert "no prediction" in doc["errors"][1]["error"]
    assert [row["name"] for row in doc["per_image"]] == ["a", "b"]
    assert doc["summary"]["iou"] == pytest.approx(np.mean([r["iou"] for r in doc["per_image"]]))


def test_size_mismatch_and_unreadable_files_are_errors(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    pred_dir, gt_dir = dirs
    Image.fromarray(np.zeros((48, 65), np.uint8)).save(pred_dir / "b.png")
    (pred_dir / "c.png").write_bytes(b"not a png")
    proc = run_subprocess(
        "--pred", str(pred_dir), "--gt", str(gt_dir), "--json", str(tmp_path / "o.json")
    )
    assert proc.returncode == 1
    doc = json.loads((tmp_path / "o.json").read_text())
    errors = {e["name"]: e["error"] for e in doc["errors"]}
    assert "size mismatch" in errors["b"] and "65×48" in errors["b"]
    assert "cannot read" in errors["c"]
    assert [row["name"] for row in doc["per_image"]] == ["a"]
    assert "error: b" in proc.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--threshold", "2"], "--threshold: expected a number from 0.0 to 1.0, got 2.0"),
        (["--threshold", "-0.1"], "expected a number from 0.0 to 1.0, got -0.1"),
        (["--threshold", "nan"], "expected a decimal number such as 0.5, got 'nan'"),
        (["--threshold", "half"], "expected a decimal number such as 0.5, got 'half'"),
        (["--threshold", "٠.٥"], "expected a decimal number such as 0.5"),
        (["--workers", "0"], "--workers: expected a whole number at least 1, got 0"),
        (["--workers", "²"], "--workers: expected a whole number of digits 0-9, got '²'"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    dirs: tuple[Path, Path], tmp_path: Path, extra: list[str], message: str
) -> None:
    out = tmp_path / "out.json"
    proc = run_subprocess("--pred", str(dirs[0]), "--gt", str(dirs[1]), "--json", str(out), *extra)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not out.exists()


def test_missing_directory_exits_2(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--pred", str(tmp_path / "nope"), "--gt", str(dirs[1]), "--json", "x.json"])
    assert exc.value.code == 2


def test_gt_may_be_bmp_or_jpg_and_non_binary_gt_warns(
    dirs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred_dir, gt_dir = dirs
    a = cv2.imread(str(gt_dir / "a.png"), cv2.IMREAD_GRAYSCALE)
    (gt_dir / "a.png").unlink()
    cv2.imwrite(str(gt_dir / "a.bmp"), a)
    b = cv2.imread(str(gt_dir / "b.png"), cv2.IMREAD_GRAYSCALE)
    (gt_dir / "b.png").unlink()
    cv2.imwrite(str(gt_dir / "b.jpg"), b)
    c = cv2.imread(str(gt_dir / "c.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(gt_dir / "c.png"), np.where(c > 0, 200, 100).astype(np.uint8))
    code, doc = run(pred_dir, gt_dir, tmp_path / "out.json")
    assert code == 0 and [r["name"] for r in doc["per_image"]] == ["a", "b", "c"]
    stderr = capsys.readouterr().err
    assert "c.png is not binary" in stderr and "a.bmp" not in stderr
    pred_c = cv2.imread(str(pred_dir / "c.png"), cv2.IMREAD_GRAYSCALE)
    assert doc["per_image"][2]["iou"] == evaluate_pair(pred_c, c)["iou"]  # 200 > 127 ≥ 100


def test_sixteen_bit_and_rgb_predictions_are_converted_not_clipped(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    pred_dir, gt_dir = dirs
    _, reference_doc = run(pred_dir, gt_dir, tmp_path / "ref.json")
    a = np.asarray(Image.open(pred_dir / "a.png"))
    Image.fromarray(a.astype(np.uint16) * 257).save(pred_dir / "a.png")  # 16-bit greyscale
    b = np.asarray(Image.open(pred_dir / "b.png"))
    Image.fromarray(np.stack([b, b, b], axis=-1)).save(pred_dir / "b.png")  # RGB
    code, doc = run(pred_dir, gt_dir, tmp_path / "out.json")
    assert code == 0
    assert doc["per_image"] == reference_doc["per_image"]

    odd = np.array([[0, 128, 1000, 32896, 65535]], np.uint16)
    Image.fromarray(odd).save(tmp_path / "odd.png")
    assert Image.open(tmp_path / "odd.png").mode == "I;16"
    assert read_gray8(tmp_path / "odd.png").tolist() == [[0, 0, 4, 128, 255]]


def test_threshold_option_is_applied_and_recorded(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    _, default = run(*dirs, tmp_path / "d.json")
    _, strict = run(*dirs, tmp_path / "s.json", "--threshold", "0.9")
    assert strict["settings"]["threshold"] == 0.9
    assert strict["summary"]["iou"] != default["summary"]["iou"]
    assert strict["summary"]["mae"] == default["summary"]["mae"]  # SOD family: no threshold


def test_results_do_not_depend_on_the_number_of_workers(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    _, one = run(*dirs, tmp_path / "1.json", "--workers", "1")
    _, two = run(*dirs, tmp_path / "2.json", "--workers", "2")
    assert one == two


def test_the_command_imports_neither_torch_nor_django(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    wrapper = (
        "import runpy, sys\n"
        f"sys.argv = ['x', '--pred', {str(dirs[0])!r}, '--gt', {str(dirs[1])!r},"
        f" '--json', {str(tmp_path / 'o.json')!r}, '--workers', '1']\n"
        "try:\n    runpy.run_module('pipelines.metrics', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'django', 'celery'))\n"
        "print('FORBIDDEN', bad)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", wrapper], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "FORBIDDEN []" in proc.stdout
