"""The faster chunk path keeps every result: files written on a writer thread
fail only their own item, the run summary still equals `pipelines.metrics` over the stored
folders (gated and ungated), and a worker's pool process starts its sandbox forkserver early."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from django.conf import settings

from evalsite.evals.models import ItemResult, ResultStatus, RunStatus
from evalsite.evals.services import execute
from evalsite.evals.services.artefacts import write_item_artefacts
from evalsite.evals.services.runs import eval_run_start
from pipelines.metrics import MetricAggregator
from pipelines.metrics.io import Pair, load_pair
from pipelines.metrics.registry import image_means
from tests.evals.conftest import fake_model, item_key, run_inline  # noqa: F401 - fixtures
from tests.evals.factories import fake_run_done, tiny_set, tiny_spec, version_row

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.mark.parametrize(("prefetch", "threads"), [(False, 1), (True, 1), (True, 0)])
def test_a_file_that_cannot_be_written_fails_its_item_only(
    tmp_path,
    fake_model,  # noqa: F811
    run_inline,  # noqa: F811
    settings,
    monkeypatch,
    prefetch,
    threads,
):
    # prefetch with 1 runtime thread: files on the writer thread; else written in line
    settings.EVAL_PREFETCH, settings.EVAL_RUNNER_THREADS = prefetch, threads
    writers = []
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=6, empty=1)
    stems = sorted(dv.items.values_list("stem", flat=True))
    broken = stems[2]

    # An error of this item's own (a disk that is full is the worker's fault, not the item's:
    # tests/evals/test_infrastructure_faults.py)
    def write(run_id, stem, post):
        writers.append(threading.current_thread().name)
        if stem == broken:
            raise OSError(36, "File name too long")
        return write_item_artefacts(run_id, stem, post)

    monkeypatch.setattr(execute, "write_item_artefacts", write)
    run = run_inline(eval_run_start(model_version=version, dataset_version=dv, chunk_size=4))
    assert run.status == RunStatus.DONE, run.error
    rows = {r.item.stem: r for r in ItemResult.objects.filter(run=run).select_related("item")}
    on_writer = prefetch and threads == 1 and (os.cpu_count() or 1) > 1
    assert all(name.startswith("write") == on_writer for name in writers), writers
    assert rows[broken].status == ResultStatus.FAILED
    assert "File name too long" in rows[broken].error
    assert rows[broken].artefacts == {} and rows[broken].attempt == 1
    assert not list((Path(settings.MEDIA_ROOT) / f"runs/{run.pk}").rglob(f"{broken}.*png"))
    ok = [r for s, r in rows.items() if s != broken]
    assert all(r.status == ResultStatus.OK and r.artefacts["alpha"] for r in ok)
    assert run.summary["counts"] == {**run.summary["counts"], "ok": len(stems) - 1, "failed": 1}


def test_the_summary_equals_pipelines_metrics_over_the_gated_and_ungated_folders(
    tmp_path,
    fake_model,  # noqa: F811
    run_inline,  # noqa: F811
):
    run, rows = fake_run_done(run_inline, tmp_path, n=6, empty=2)
    assert any(r.gated for r in rows) and not all(r.gated for r in rows)  # both paths are taken
    media = Path(settings.MEDIA_ROOT) / f"runs/{run.pk}"
    for key, folder in (("metrics", "alpha"), ("ungated_metrics", "alpha_ungated")):
        agg = MetricAggregator()  # what `python -m pipelines.metrics --pred <folder>` computes
        for r in sorted(rows, key=lambda r: r.item.stem):
            pair = Pair(r.item.stem, media / folder / f"{r.item.stem}.png", Path(r.item.mask.path))
            pred, gt, _ = load_pair(pair)
            agg.update(pred, gt, pair.name)
        reference = agg.compute()
        # plus the registry's means of per-image values (e.g. mean per-image max F)
        expected = {**reference["summary"], **image_means(reference["per_image"])}
        assert run.summary[key] == expected, key
        curves = run.curves if folder == "alpha" else run.curves["ungated"]
        assert {k: curves[k] for k in reference["curves"]} == reference["curves"]
    gated = next(r for r in rows if r.gated)
    assert run.summary["ungated_metrics"] != run.summary["metrics"]
    assert gated.ungated != gated.metrics


def test_an_unchanged_spec_is_schema_checked_once_per_process(monkeypatch):
    calls = []
    real = execute.parse_spec
    monkeypatch.setattr(execute, "parse_spec", lambda spec: calls.append(1) or real(spec))
    execute._parsed_spec.cache_clear()
    spec = tiny_spec()
    first = execute._parsed_spec(json.dumps(spec, sort_keys=True))
    again = execute._parsed_spec(json.dumps(dict(reversed(list(spec.items()))), sort_keys=True))
    other = execute._parsed_spec(json.dumps(tiny_spec(size=32), sort_keys=True))
    assert first is again and other is not first and len(calls) == 2
    execute._parsed_spec.cache_clear()


def test_a_worker_starts_its_sandbox_forkserver_unless_it_runs_no_model_code(monkeypatch):
    from evalsite import celery as worker_app
    from pipelines import sandbox_forkserver as sandbox

    started = []
    monkeypatch.setattr(sandbox, "prestart", lambda: started.append(True) or True)
    for queues in (["maintenance"], "maintenance", ("coreml", "maintenance")):
        worker_app._start_sandbox_forkserver(options={"queues": queues})
    assert started == []
    for queues in (["torch"], "maintenance,default", None, []):
        worker_app._start_sandbox_forkserver(options={"queues": queues})
    assert started == [True] * 4


def test_a_pool_process_forked_from_the_worker_uses_its_forkserver():
    import os
    from multiprocessing import forkserver

    from pipelines import sandbox, sandbox_forkserver

    assert sandbox_forkserver.prestart() is True
    server = forkserver._forkserver._forkserver_pid
    assert server is not None and sandbox.run_in_sandbox(len, "abc") == 3
    child = os.fork()
    if child == 0:  # a pool process: adopts the server, forks sandboxes from it, starts none
        code = 1
        try:
            adopted = sandbox_forkserver.adopt_forkserver()
            ok = sandbox.run_in_sandbox(len, "abcd") == 4
            same = forkserver._forkserver._forkserver_pid == server
            code = 0 if adopted and ok and same else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sandbox_forkserver._running(server) and not sandbox_forkserver._running(child)


def _colour_coefficients_one_blur(guide, src, radius, eps):
    """The former formulation: the 13 moments merged into one image and box-filtered at once."""
    import cv2
    import numpy as np

    from pipelines.postprocess.guided import _box, _clamp_radius, _solve_spd3

    r = _clamp_radius(radius, guide.shape)
    g = [guide[..., c] for c in range(3)]
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    stack = cv2.merge([*g, src, *(g[i] * g[j] for i, j in pairs), *(g[c] * src for c in range(3))])
    m = cv2.split(_box(stack, r))
    mean_i, mean_p = m[0:3], m[3]
    s = {}
    for k, (i, j) in enumerate(pairs):
        s[i, j] = m[4 + k] - mean_i[i] * mean_i[j]
        if i == j:
            s[i, j] = np.maximum(s[i, j], 0) + np.float32(eps)
    cov = [m[10 + c] - mean_i[c] * mean_p for c in range(3)]
    a_r, a_g, a_b = _solve_spd3(s, cov)
    b = mean_p - a_r * mean_i[0] - a_g * mean_i[1] - a_b * mean_i[2]
    smoothed = _box(cv2.merge([a_r, a_g, a_b, b]), r)
    return np.ascontiguousarray(smoothed[..., :3]), np.ascontiguousarray(smoothed[..., 3])


@pytest.mark.parametrize("shape", [(1, 9), (2, 3), (37, 53), (333, 500)])
@pytest.mark.parametrize("radius", [0, 1, 2, 5])
def test_plane_by_plane_box_filters_give_the_colour_coefficients_bit_for_bit(shape, radius):
    import numpy as np

    from pipelines.postprocess.guided import coefficients_colour

    rng = np.random.default_rng(hash((shape, radius)) % 2**32)
    guide = rng.random((*shape, 3), dtype=np.float32)
    guide[..., 1] = guide[..., 0] * np.float32(0.98)  # near-grey: an ill-conditioned covariance
    src = rng.random(shape, dtype=np.float32)
    mean_a, mean_b = coefficients_colour(guide, src, radius, 1e-4)
    ref_a, ref_b = _colour_coefficients_one_blur(guide, src, radius, 1e-4)
    assert mean_a.shape == ref_a.shape and mean_a.dtype == ref_a.dtype == np.float32
    assert np.array_equal(mean_a, ref_a) and np.array_equal(mean_b, ref_b)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/v/bin/celery", "-A", "evalsite", "worker", "-Q", "torch,onnx"], (True, "torch,onnx")),
        (["/v/lib/celery/__main__.py", "-A", "evalsite", "worker"], (True, None)),
        (
            ["/v/bin/celery", "-A", "evalsite", "worker", "--queues=maintenance"],
            (True, "maintenance"),
        ),
        (["/v/bin/celery", "-A", "evalsite", "worker", "-Qdefault"], (True, "default")),
        (["/v/bin/celery", "-A", "evalsite", "beat"], (False, None)),
        (["manage.py", "runserver"], (False, None)),
        (["/v/lib/other/__main__.py", "worker"], (False, None)),
        ([], (False, None)),
    ],
)
def test_only_a_celery_worker_command_starts_the_forkserver_at_import(argv, expected):
    from evalsite.celery import worker_command

    assert worker_command(argv) == expected


def test_a_torch_export_model_loads_to_the_same_outputs_with_memoised_type_hints(tmp_path):
    import typing

    import numpy as np
    import torch

    from pipelines.runners.torch_runners import memoised_type_hints
    from tests.evals.factories import export_tiny_model

    path = export_tiny_model(tmp_path / "tiny.pt2")
    x = torch.from_numpy(np.random.default_rng(3).random((1, 3, 64, 64), dtype=np.float32))
    with torch.no_grad():
        plain = torch.export.load(str(path)).module()(x)
        real = typing.get_type_hints
        with memoised_type_hints():
            assert typing.get_type_hints is not real
            memoised = torch.export.load(str(path)).module()(x)
        assert typing.get_type_hints is real  # restored
    flat = [plain] if isinstance(plain, torch.Tensor) else list(plain)
    again = [memoised] if isinstance(memoised, torch.Tensor) else list(memoised)
    assert len(flat) == len(again)
    assert all(torch.equal(a, b) for a, b in zip(flat, again, strict=True))


def test_a_long_run_ends_on_smaller_chunks_and_still_evaluates_every_item_once(
    tmp_path,
    fake_model,  # noqa: F811
    run_inline,  # noqa: F811
    settings,
):
    from pipelines.chunking import chunk_bounds

    # its own media folder: a later test's run with the same id must not find these 22 files
    settings.MEDIA_ROOT = tmp_path / "media"

    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=21, empty=1)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=4)
    ids = list(dv.items.order_by("pk").values_list("pk", flat=True))
    chunks = [c.payload["item_ids"] for c in run.job.chunks.order_by("index")]
    assert chunks == [ids[a:b] for a, b in chunk_bounds(len(ids), 4)]
    assert len(ids) == 22  # 21 with a subject, 1 without: 3 chunks of 4, then 10 pieces of 1
    assert [len(c) for c in chunks] == [4, 4, 4] + [1] * 10
    run = run_inline(run)
    assert run.status == RunStatus.DONE, run.error
    assert sorted(ItemResult.objects.filter(run=run).values_list("item_id", flat=True)) == ids
    assert run.summary["counts"]["ok"] + run.summary["counts"].get("failed", 0) == len(ids)
