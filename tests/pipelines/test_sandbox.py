"""Sandboxed validation: every bad upload ends with a specific reason and the parent survives."""

from __future__ import annotations

import os
import signal
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.sandbox import (
    ItemFailed,
    SandboxCrashed,
    SandboxedRunner,
    SandboxFailed,
    SandboxLimits,
    run_in_sandbox,
    validate_model,
)
from tests.pipelines.test_runners_models import (
    HalfSizeNet,
    MemoryHogNet,
    NaNNet,
    TinyNet,
    save_onnx,
    save_pt2,
    save_torchscript,
    spec,
)

ROOT = Path(__file__).resolve().parents[2]

# Keep the children cheap on 2-core CI: a real model would get the 4 GiB / 120 s defaults.
FAST = {"memory_mb": 3072, "cpu_seconds": 60, "timeout_s": 60.0}


# Module-level so the spawned child can import them by name.
def _segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def _hang() -> None:
    time.sleep(600)


def _spin() -> None:
    while True:
        pass


def _hog_memory() -> int:
    return int(torch.ones(64 * 2**30, dtype=torch.uint8).sum())


def _add(a: int, b: int) -> int:
    return a + b


def _fail() -> None:
    raise ValueError("bad weights")


@pytest.mark.parametrize(
    ("fmt", "save"),
    [("torch_export", save_pt2), ("torchscript", save_torchscript), ("onnx", save_onnx)],
)
def test_valid_models_pass_with_load_time_and_latency(
    tmp_path: Path, fmt: str, save: object
) -> None:
    path = save(TinyNet(), tmp_path / "model.bin")  # type: ignore[operator]
    report = validate_model(path, spec(fmt), **FAST)
    assert report.ok, report.reason
    assert report.format == fmt and report.reason == "ok"
    assert report.load_ms is not None and report.load_ms > 0
    assert report.latency_ms is not None and report.latency_ms > 0
    assert report.output_shapes == [[1, 1, 512, 512], [1]]
    assert report.dtype == "float32"
    assert (
        report.value_range is not None and 0 <= report.value_range[0] <= report.value_range[1] <= 1
    )
    assert report.confidence is not None and 0 < report.confidence < 1


def test_it_rejects_pickled_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "model.pt2"
    torch.save(TinyNet(), path)
    report = validate_model(path, spec(), **FAST)
    assert not report.ok
    assert "pickled checkpoint" in report.reason and "torch.export.save" in report.reason


def test_wrong_output_shape_is_rejected_with_the_shapes(tmp_path: Path) -> None:
    report = validate_model(save_pt2(HalfSizeNet(), tmp_path / "m.pt2"), spec(), **FAST)
    assert not report.ok
    assert report.reason == "alpha output has shape (1, 1, 256, 256), spec expects (1, 1, 512, 512)"
    assert report.output_shapes == [[1, 1, 256, 256], [1]]


def test_nan_output_is_rejected(tmp_path: Path) -> None:
    report = validate_model(save_pt2(NaNNet(), tmp_path / "m.pt2"), spec(), **FAST)
    assert not report.ok and report.reason == "alpha output contains NaN"


def test_a_model_allocating_far_past_the_limit_is_out_of_memory_and_the_parent_lives(
    tmp_path: Path,
) -> None:
    report = validate_model(save_pt2(MemoryHogNet(), tmp_path / "m.pt2"), spec(), **FAST)
    assert not report.ok
    assert "out of memory" in report.reason and "3072 MB limit" in report.reason
    assert validate_model(save_pt2(TinyNet(), tmp_path / "ok.pt2"), spec(), **FAST).ok


def test_random_bytes_and_traversal_zips_are_rejected_before_any_load(tmp_path: Path) -> None:
    noise = tmp_path / "model.pt2"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    assert "not a recognised model file" in validate_model(noise, spec(), **FAST).reason
    evil = tmp_path / "model.mlpackage.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("model.mlpackage/../../../etc/evil", b"x")
    reason = validate_model(evil, spec(), **FAST).reason
    assert "escapes the archive ('..')" in reason


def test_format_must_match_the_spec_and_the_spec_must_be_valid(tmp_path: Path) -> None:
    path = save_pt2(TinyNet(), tmp_path / "m.pt2", 64)
    report = validate_model(path, spec("onnx"), **FAST)
    assert report.reason == "the file is a torch_export model but the spec says format 'onnx'"
    bad = spec()
    del bad["outputs"]["alpha"]["index"]
    assert validate_model(path, bad).reason == (
        "invalid spec: outputs.alpha: 'index' or 'name' is required"
    )


def test_run_in_sandbox_returns_results_and_exception_text() -> None:
    assert run_in_sandbox(_add, 2, b=3) == 5
    with pytest.raises(SandboxFailed, match="ValueError: bad weights"):
        run_in_sandbox(_fail)


def test_a_segfaulting_child_is_reported_by_signal_name() -> None:
    with pytest.raises(SandboxCrashed) as err:
        run_in_sandbox(_segfault)
    assert "killed by signal 11 (SIGSEGV)" in err.value.reason


def test_a_hanging_child_is_killed_at_the_wall_clock_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(SandboxCrashed, match=r"timed out after 2 s \(wall clock\)"):
        run_in_sandbox(_hang, limits=SandboxLimits(timeout_s=2))
    assert time.monotonic() - started < 20


def test_cpu_limit_and_memory_limit_are_enforced_in_the_child() -> None:
    with pytest.raises(SandboxCrashed, match=r"CPU time limit of 1 s exceeded \(SIGXCPU\)"):
        run_in_sandbox(_spin, limits=SandboxLimits(cpu_seconds=1, timeout_s=30))
    with pytest.raises(SandboxFailed, match=r"out of memory: .* 2048 MB limit"):
        run_in_sandbox(_hog_memory, limits=SandboxLimits(memory_mb=2048))


def test_sandboxed_runner_serves_many_images_and_survives_bad_ones(tmp_path: Path) -> None:
    path = save_pt2(TinyNet(), tmp_path / "m.pt2", 64)
    good = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (80, 60), (10, 200, 30)).save(good)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with SandboxedRunner(path, spec(size=64), limits=SandboxLimits(**FAST)) as runner:
        assert runner.info["load_ms"] > 0 and runner.info["device"] == "cpu"
        first = runner.predict_path(good)
        assert first.alpha.shape == (64, 64) and first.source_size == (60, 80)
        with pytest.raises(ItemFailed, match="UnidentifiedImageError"):
            runner.predict_path(tmp_path / "broken.png")
        second = runner.predict(np.zeros((30, 40, 3), np.uint8))  # child still serving
        assert second.alpha.shape == (64, 64)
        pid = runner._proc.pid
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(SandboxCrashed, match=r"signal 9 \(SIGKILL\)"):
            runner.predict_path(good)
        assert not runner.alive
        runner.start()  # evaluation restarts the child and carries on
        assert runner.predict_path(good).alpha.shape == (64, 64)


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML runs on macOS")
def test_coreml_uploads_wait_for_a_macos_worker_instead_of_being_rejected(tmp_path: Path) -> None:
    package = tmp_path / "m.mlpackage.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("m.mlpackage/Manifest.json", "{}")
    child = spec("coreml", scale=1.0, mean=[0, 0, 0], std=[1, 1, 1])
    child["outputs"] = {"alpha": {"name": "alpha", "kind": "probability"}}
    report = validate_model(package, child, **FAST)
    assert not report.ok and report.runtime_unavailable
    assert "Core ML prediction needs a macOS worker (coreml queue)" in report.reason


# ------------------------------------------------------------ readiness (a worker waits on it)

_READY_SCRIPT = """
import sys, time
from multiprocessing import forkserver
from pipelines import sandbox_forkserver as sandbox
if sys.argv[1] == "none":  # no server started here: nothing to wait for, nothing started
    print(sandbox.wait_ready(30), forkserver._forkserver._forkserver_pid)
    sys.exit(0)
if sys.argv[1] == "slow":  # a preload that takes 3 s: not ready within 0.5 s, ready later
    sandbox.PRELOAD = ("slow_import_for_test", *sandbox.PRELOAD)
sandbox.prestart()
server = forkserver._forkserver._forkserver_pid
first = sandbox.wait_ready(0.5 if sys.argv[1] == "slow" else 60)
second = sandbox.wait_ready(60)
maps = open(f"/proc/{server}/maps").read()
print(first, second, "libtorch" in maps)
"""


@pytest.mark.parametrize(
    ("case", "expected"),
    [("none", "False None"), ("plain", "True True True"), ("slow", "False True True")],
)
def test_wait_ready_returns_once_the_forkserver_has_imported_its_preload(tmp_path, case, expected):
    import subprocess

    (tmp_path / "slow_import_for_test.py").write_text("import time\ntime.sleep(3)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", _READY_SCRIPT, case],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == expected.split()
