"""`python -m pipelines.predict` end to end with a tiny contract-satisfying torch.export model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipelines.predict import main
from pipelines.spec import build_spec

ROOT = Path(__file__).resolve().parents[2]
SIZE = 32


def tiny_spec(**extra: Any) -> dict[str, Any]:
    return build_spec("torch_export", size=SIZE, mean=(0, 0, 0), std=(1, 1, 1), **extra)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .pt2 whose alpha is "red-ish pixels"; its confidence grows with how red the photo is."""
    pytest.importorskip("torch")
    import torch

    class RedSubject(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            redness = x[:, 0:1] - 0.5 * (x[:, 1:2] + x[:, 2:3])
            alpha = torch.sigmoid((redness - 0.25) * 30.0)
            confidence = (alpha.mean() - 0.05) * 40.0  # logit: a grey photo ≈ −2 → gated
            return alpha, confidence

    folder = tmp_path_factory.mktemp("model")
    path = folder / "red.pt2"
    program = torch.export.export(RedSubject().eval(), (torch.rand(1, 3, SIZE, SIZE),))
    torch.export.save(program, str(path))
    (folder / "red.pt2.spec.json").write_text(json.dumps(tiny_spec()))
    return path


def red_photo(h: int, w: int) -> np.ndarray:
    img = np.full((h, w, 3), 120, np.uint8)
    img[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = (230, 30, 30)
    return img


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(red_photo(60, 80)).save(folder / "a.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 50 wide × 40 high, shown rotated 90°: 40 wide × 50 high
    Image.fromarray(red_photo(40, 50)).save(folder / "b.jpg", exif=exif.tobytes(), quality=95)
    faint = np.full((30, 30, 3), 128, np.uint8)
    faint[12:17, 12:17] = (230, 30, 30)  # 3 % red: low confidence (p ≈ 0.3), so gated
    Image.fromarray(faint).save(folder / "c.png")
    (folder / "notes.txt").write_text("not a photo")
    return folder


def run(*args: str | Path) -> int:
    return main([str(a) for a in args])


def pngs(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for p in sorted(folder.iterdir()):
        with Image.open(p) as im:
            assert im.mode == "L", p.name
            out[p.name] = np.asarray(im)
    return out


def test_it_writes_one_greyscale_png_per_photo_at_the_upright_size(
    model: Path, images: Path, tmp_path: Path
) -> None:
    out, report = tmp_path / "out", tmp_path / "r.json"
    assert run("--model", model, "--images", images, "--out", out, "--json", report) == 0
    written = pngs(out)
    assert list(written) == ["a.png", "b.png", "c.png"]  # exactly one per photo, nothing else
    assert written["a.png"].shape == (60, 80)
    assert written["b.png"].shape == (50, 40)  # after EXIF orientation
    assert written["a.png"][30, 40] == 255 and written["a.png"][2, 2] == 0
    assert not written["c.png"].any()  # gated: all zero

    doc = json.loads(report.read_text())
    rows = {r["name"]: r for r in doc["images"]}
    assert rows["a"]["gated"] is False and rows["a"]["confidence"] > 0.5
    assert rows["a"]["instance_count"] == 1
    assert rows["c"]["gated"] is True and rows["c"]["confidence"] < 0.5
    assert rows["c"]["instance_count"] == 0
    for r in rows.values():
        assert r["error"] is None
        assert set(r["latency_ms"]) >= {"preprocess", "model", "postprocess"}
        assert all(v >= 0 for v in r["latency_ms"].values())
    assert doc["errors"] == [] and doc["summary"]["written"] == 3
    assert doc["summary"]["latency_ms"]["warmup_excluded"] == 1
    assert doc["settings"]["format"] == "torch_export" and doc["settings"]["runtime"] == "auto"


def test_no_gate_writes_the_ungated_alpha(model: Path, images: Path, tmp_path: Path) -> None:
    gated, ungated = tmp_path / "gated", tmp_path / "ungated"
    assert run("--model", model, "--images", images, "--out", gated) == 0
    assert (
        run(
            "--model",
            model,
            "--images",
            images,
            "--out",
            ungated,
            "--no-gate",
            "--json",
            tmp_path / "r.json",
        )
        == 0
    )
    g, u = pngs(gated), pngs(ungated)
    assert not g["c.png"].any() and u["c.png"].any()  # low confidence: the variants differ
    assert np.array_equal(g["a.png"], u["a.png"])  # confident: identical
    rows = {r["name"]: r for r in json.loads((tmp_path / "r.json").read_text())["images"]}
    assert rows["c"]["gated"] is False and rows["c"]["below_threshold"] is True


def test_cutouts_and_bilinear_option(model: Path, images: Path, tmp_path: Path) -> None:
    out, cut = tmp_path / "out", tmp_path / "cut"
    code = run(
        "--model",
        model,
        "--images",
        images,
        "--out",
        out,
        "--cutouts",
        cut,
        "--upsample",
        "bilinear",
    )
    assert code == 0
    names = sorted(p.name for p in cut.iterdir())
    assert names == ["a.instance-1.png", "a.png", "b.instance-1.png", "b.png", "c.png"]
    with Image.open(cut / "a.png") as im:
        assert im.mode == "RGBA"
        assert np.array_equal(np.asarray(im)[..., 3], pngs(out)["a.png"])


def test_a_broken_photo_fails_alone_with_exit_1(
    model: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (images / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    out, report = tmp_path / "out", tmp_path / "r.json"
    out.mkdir()
    (out / "broken.png").write_bytes(b"stale from an earlier run")
    assert run("--model", model, "--images", images, "--out", out, "--json", report) == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    assert "broken.jpg" in capsys.readouterr().err
    doc = json.loads(report.read_text())
    assert [e["name"] for e in doc["errors"]] == ["broken"]
    assert doc["summary"]["failed"] == 1 and doc["summary"]["written"] == 3


def test_bad_model_spec_or_arguments_exit_2(model: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pickle = tmp_path / "m.pt2"
    pickle.write_bytes(b"\x80\x02}q\x00.")  # a pickle protocol-2 header: refused, never loaded
    (tmp_path / "m.pt2.spec.json").write_text(json.dumps(tiny_spec()))
    assert run("--model", pickle, "--images", images, "--out", out) == 2
    no_sidecar = tmp_path / "lonely.pt2"
    no_sidecar.write_bytes(model.read_bytes())
    assert run("--model", no_sidecar, "--images", images, "--out", out) == 2
    bad_spec = tmp_path / "bad.spec.json"
    bad_spec.write_text(json.dumps(tiny_spec(gate_threshold=3)))
    assert run("--model", model, "--spec", bad_spec, "--images", images, "--out", out) == 2
    onnx_spec = tmp_path / "onnx.spec.json"
    onnx_spec.write_text(json.dumps({**tiny_spec(), "format": "onnx"}))
    assert run("--model", model, "--spec", onnx_spec, "--images", images, "--out", out) == 2
    assert run("--model", model, "--images", tmp_path / "nope", "--out", out) == 2
    assert run("--model", model, "--images", images, "--out", images) == 2
    assert run("--model", "builtin:no-such-thing", "--images", images, "--out", out) == 2
    assert run("--model", model, "--images", images, "--out", out, "--runtime", "coreml") == 2
    with pytest.raises(SystemExit) as e:
        run("--model", model, "--images", images)  # --out missing: argparse
    assert e.value.code == 2
    assert not out.exists()  # nothing written on a bad invocation


def test_module_entry_point_runs_the_builtin_without_a_file(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.predict",
            "--model",
            "builtin:saliency-grabcut",
            "--images",
            str(images),
            "--out",
            str(out),
            "--json",
            str(tmp_path / "r.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    assert json.loads((tmp_path / "r.json").read_text())["settings"]["format"] == "builtin"
