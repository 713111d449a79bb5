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
from tests.evals.factories import fake_run_done, tiny_set, tiny_spec, version_row

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def decode(path: Path | io.BytesIO) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).copy()


def test_per_image_results_equal_a_reference_computed_from_the_stored_files(
    tmp_path,
    fake_model,  # noqa: F811
    run_inline,  # noqa: F811
):
    run, rows = fake_run_done(run_inline, tmp_path, n=6, empty=1)
    media = Path(settings.MEDIA_ROOT)
    assert len(rows) == run.dataset_version.items.count()
    assert all(r.status == ResultStatus.OK for r in rows)
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


def _reference(run_id: int) -> tuple[dict, dict, dict, str]:
    """What `python -m pipelines.metrics` gives on the run's stored folders (gated summary,
    ungated summary, curves) and the outputs digest hashed from the stored files."""
    import hashlib

    from evalsite.evals.services.aggregate import outputs_digest
    from pipelines.metrics import MetricAggregator
    from pipelines.metrics.io import Pair, load_pair
    from pipelines.metrics.registry import image_means

    media = Path(settings.MEDIA_ROOT)
    rows = ItemResult.objects.filter(run_id=run_id).select_related("item").order_by("item__stem")
    aggs = {"alpha": MetricAggregator(), "alpha_ungated": MetricAggregator()}
    shas = {}
    for r in rows:
        shas[r.item.stem] = hashlib.sha256((media / r.artefacts["alpha"]).read_bytes()).hexdigest()
        for key, agg in aggs.items():
            pred, gt, _ = load_pair(
                Pair(r.item.stem, media / r.artefacts[key], Path(r.item.mask.path))
            )
            agg.update(pred, gt, name=r.item.stem)
    gated, ungated = aggs["alpha"].compute(), aggs["alpha_ungated"].compute()
    return (
        {**gated["summary"], **image_means(gated["per_image"])},
        {**ungated["summary"], **image_means(ungated["per_image"])},
        {**gated["curves"], "ungated": ungated["curves"]},
        outputs_digest(shas),
    )


@pytest.mark.parametrize("lost", ["alpha files", "kept curves"])
def test_finalising_reads_the_stored_numbers_and_equals_pipelines_on_the_folders(
    tmp_path,
    fake_model,  # noqa: F811
    run_inline,  # noqa: F811
    django_capture_on_commit_callbacks,
    lost,
):
    """Finalising needs no alpha file: the chunks kept the rows, curves and digests it averages.
    Without the kept curves it evaluates the stored files instead, to the same numbers."""
    import shutil
    from unittest import mock

    from evalsite.evals.services import aggregate
    from evalsite.evals.services.scores import FOLDER

    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=6, empty=1)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=2)
    chunks = list(Chunk.objects.filter(job_id=run.job_id).order_by("index"))
    run_inline(run, only=len(chunks) - 1)
    last = jobs.chunk_claim(chunk_id=chunks[-1].pk, worker="inline")
    assert last is not None
    result = eval_chunk_run(last)
    assert ItemResult.objects.filter(run=run, gated=True).exists()  # the ungated files differ
    metrics, ungated, curves, digest = _reference(run.pk)
    folder = Path(settings.MEDIA_ROOT) / "runs" / str(run.pk)

    if lost == "alpha files":
        shutil.rmtree(folder / "alpha")
        shutil.rmtree(folder / "alpha_ungated")
        with (
            mock.patch.object(aggregate, "evaluate_pair") as evaluate,
            django_capture_on_commit_callbacks(execute=True),
        ):
            jobs.chunk_complete(last, result)
        evaluate.assert_not_called()
    else:
        shutil.rmtree(folder / FOLDER)
        with django_capture_on_commit_callbacks(execute=True):
            jobs.chunk_complete(last, result)

    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error
    assert run.summary["metrics"] == metrics
    assert run.summary["ungated_metrics"] == ungated
    assert run.curves == curves
    assert run.output_digest == digest


def test_a_stale_attempts_curves_are_not_used(
    tmp_path,
    fake_model,  # noqa: F811
):
    """Curves written by another attempt than the row's are ignored (the files are evaluated)."""
    from unittest import mock

    from evalsite.evals.services import aggregate
    from evalsite.evals.services.scores import curves_load

    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=3, empty=0)
    run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=3)
    claimed = jobs.chunk_claim(chunk_id=Chunk.objects.get(job_id=run.job_id).pk, worker="w")
    assert claimed is not None
    eval_chunk_run(claimed)
    rows = list(ItemResult.objects.filter(run=run).select_related("item").order_by("item__stem"))
    kept = curves_load(run_id=run.pk)
    assert {r.item_id for r in rows} == set(kept) and {c.attempt for c in kept.values()} == {1}
    expected = aggregate._score(rows)
    ItemResult.objects.filter(run=run).update(attempt=2)  # rows of a later attempt
    rows = list(ItemResult.objects.filter(run=run).select_related("item").order_by("item__stem"))
    with mock.patch.object(aggregate, "evaluate_pair", wraps=evaluate_pair) as evaluate:
        assert aggregate._score(rows) == expected
    assert evaluate.call_count == len(rows)  # every item from its files


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


@pytest.mark.parametrize("in_order", [True, False])
def test_the_next_chunks_first_image_predicted_ahead_changes_no_result(
    tmp_path,
    fake_model,  # noqa: F811
    settings,
    in_order,
):
    """With prefetch on, a chunk's last image is scored while the model predicts the first image
    of the job's next pending chunk; the next chunk on this worker starts from that output. Taken
    in another order, the guess is dropped and the image predicted again. Either way every row
    is the one a chunk computes one image at a time."""
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=6, empty=1)

    def rows(prefetch: bool, order: slice) -> dict[int, tuple[str, dict[str, float]]]:
        settings.EVAL_PREFETCH = prefetch
        run = eval_run_start(model_version=version, dataset_version=dv, chunk_size=2)
        for chunk in list(Chunk.objects.filter(job_id=run.job_id).order_by("index"))[order]:
            claimed = jobs.chunk_claim(chunk_id=chunk.pk, worker="w")
            assert claimed is not None
            eval_chunk_run(claimed)
        return {
            r.item_id: (r.status, r.metrics, r.alpha_sha256)
            for r in ItemResult.objects.filter(run=run)
        }

    items = dv.items.count()
    one_at_a_time = rows(False, slice(None))
    fake_model.predicted = 0
    ahead = rows(True, slice(None) if in_order else slice(None, None, -1))
    assert ahead == {
        # the same item ids: the runs share the set version
        item_id: one_at_a_time[item_id]
        for item_id in ahead
    }
    assert len(ahead) == items and all(status == ResultStatus.OK for status, _, _ in ahead.values())
    # In order each guess is used. Last chunk first, each chunk guesses the lowest pending one
    # (the first): the chunks between drop that guess, and the first chunk uses it.
    chunks = -(-items // 2)
    assert fake_model.predicted == (items if in_order else items + chunks - 2)
