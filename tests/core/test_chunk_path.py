"""The chunk path made cheaper keeps every number: per-image results equal a reference computed
through `pipelines` from the stored files, cutouts render to exactly the photo + alpha, and a
chunk writes its results in one statement."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from evalsite.core import jobs
from evalsite.core.models import Chunk
from evalsite.evals.models import SORTABLE_METRICS, ItemResult, ResultStatus, RunStatus
from evalsite.evals.services.artefacts import cutout_png, item_view
from evalsite.evals.services.execute import eval_chunk_run, load_photo
from evalsite.evals.services.runs import eval_run_start
from pipelines.metrics import evaluate_pair
from pipelines.metrics.io import read_gray8
from pipelines.metrics.registry import by_column
from pipelines.postprocess.cutout import rgba_cutout
from tests.evals.conftest import fake_model, run_inline  # noqa: F401 - fixtures
from tests.evals.factories import tiny_set, tiny_spec, version_row

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def decode(path: Path | io.BytesIO) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).copy()


def test_per_image_results_equal_a_reference_computed_from_the_stored_files(
    tmp_path,
    fake_model,  # noqa: F811
    run_inline,  # noqa: F811
):
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=6, empty=1)
    run = run_inline(eval_run_start(model_version=version, dataset_version=dv, chunk_size=3))
    assert run.status == RunStatus.DONE, run.error
    media = Path(settings.MEDIA_ROOT)
    rows = list(ItemResult.objects.filter(run=run).select_related("item"))
    assert len(rows) == dv.items.count() and all(r.status == ResultStatus.OK for r in rows)
    for row in rows:
        # metrics: the reference is `pipelines.metrics` on the stored 8-bit alpha and the mask
        alpha = read_gray8(media / row.artefacts["alpha"])
        gt = read_gray8(Path(row.item.mask.path)) > 127
        reference = {k: float(v) for k, v in evaluate_pair(alpha, gt).items() if k != "curves"}
        assert row.metrics == reference, row.item.stem
        # Instance columns are the instance matching's (tests/evals/test_instances.py).
        image_columns = [k for k in SORTABLE_METRICS if not by_column(k).instances]
        assert {k: getattr(row, k) for k in image_columns} == {
            k: reference[k] for k in image_columns
        }
        # cutouts (rendered on request): decode to exactly the photo with the stored alpha
        photo = load_photo(row.item.image.path)
        data, _ = item_view(row.artefacts, row.item.image.name, "cutout").render()
        cutout = decode(io.BytesIO(data))
        assert cutout.shape == (*photo.shape[:2], 4)
        assert np.array_equal(cutout, rgba_cutout(photo, alpha))


def test_cutout_png_is_lossless_for_rgba_rgb_and_grey_and_carries_no_metadata(tmp_path):
    rng = np.random.default_rng(0)
    for shape in ((37, 53, 4), (37, 53, 3), (37, 53)):
        image = rng.integers(0, 256, size=shape, dtype=np.uint8)
        data = cutout_png(image)
        path = tmp_path / f"cutout-{len(shape)}-{image.shape[-1]}.png"
        path.write_bytes(data)
        with Image.open(path) as im:
            assert np.array_equal(np.asarray(im), image)
            assert not im.info.get("exif") and not im.text


def test_a_chunk_writes_its_results_in_one_statement_and_a_retry_overwrites_them(
    tmp_path,
    fake_model,  # noqa: F811
):
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=5, empty=1)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=6)
    chunk = Chunk.objects.get(job_id=run.job_id)
    claimed = jobs.chunk_claim(chunk_id=chunk.pk, worker="w")
    assert claimed is not None
    with CaptureQueriesContext(connection) as queries:
        eval_chunk_run(claimed)
    writes = [q["sql"] for q in queries if "evals_itemresult" in q["sql"]]
    assert len(writes) == 1 and writes[0].lstrip().upper().startswith("INSERT"), writes
    first = {r.item_id: r.metrics for r in ItemResult.objects.filter(run=run)}

    # a retried attempt upserts the same rows (same numbers, the new attempt), never duplicates
    Chunk.objects.filter(pk=chunk.pk).update(status="pending")
    again = jobs.chunk_claim(chunk_id=chunk.pk, worker="w2")
    assert again is not None
    eval_chunk_run(again)
    rows = list(ItemResult.objects.filter(run=run))
    assert len(rows) == 6 and {r.attempt for r in rows} == {2}
    assert {r.item_id: r.metrics for r in rows} == first


def test_finalising_reuses_the_chunks_evaluation_of_exactly_the_same_arrays(tmp_path):
    from unittest import mock

    from evalsite.evals.services import scores

    rng = np.random.default_rng(1)
    pred = rng.integers(0, 256, size=(40, 30), dtype=np.uint8)
    gt = rng.random((40, 30)) > 0.5
    result = evaluate_pair(pred, gt)
    scores.evaluation_save(run_id=7, stem="a", key="alpha", pred_u8=pred, gt=gt, result=result)
    with mock.patch.object(scores, "evaluate_pair") as recompute:
        reused = scores.evaluation_of(run_id=7, stem="a", key="alpha", pred_u8=pred, gt=gt)
    recompute.assert_not_called()
    assert {k: v for k, v in reused.items() if k != "curves"} == {
        k: float(v) for k, v in result.items() if k != "curves"
    }
    for key, curve in result["curves"].items():
        assert np.array_equal(np.asarray(reused["curves"][key]), curve)
    # other pixels (a stale file) or no file: computed now, never the stored numbers
    other = pred.copy()
    other[0, 0] ^= 1
    fresh = scores.evaluation_of(run_id=7, stem="a", key="alpha", pred_u8=other, gt=gt)
    assert fresh["mae"] == evaluate_pair(other, gt)["mae"]
    missing = scores.evaluation_of(run_id=7, stem="b", key="alpha", pred_u8=pred, gt=gt)
    assert missing["iou"] == result["iou"]


def test_prefetch_gives_the_same_results_and_failures_as_one_image_at_a_time(
    tmp_path,
    fake_model,  # noqa: F811
    run_inline,  # noqa: F811
    settings,
):
    from tests.evals.conftest import item_key

    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=6, empty=1)
    stems = sorted(dv.items.values_list("stem", flat=True))
    items = {i.stem: i for i in dv.items.all()}
    fake_model.behaviour = {item_key(items[stems[1]]): "crash", item_key(items[stems[3]]): "nan"}

    def rows(prefetch: bool) -> dict[str, tuple[str, dict[str, float], str]]:
        settings.EVAL_PREFETCH = prefetch
        run = run_inline(eval_run_start(model_version=version, dataset_version=dv, chunk_size=4))
        assert run.status == RunStatus.DONE, run.error
        return {
            r.item.stem: (r.status, r.metrics, r.error.split(":")[0])
            for r in ItemResult.objects.filter(run=run).select_related("item")
        }

    one_at_a_time, ahead = rows(False), rows(True)
    assert ahead == one_at_a_time
    assert ahead[stems[1]][0] == ahead[stems[3]][0] == ResultStatus.FAILED
    assert sum(status == ResultStatus.OK for status, _, _ in ahead.values()) == len(stems) - 2
