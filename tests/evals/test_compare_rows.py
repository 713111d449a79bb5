"""The compare table's rows are paired, ordered and counted by the database: the same rows, in the
same order, as pairing every item in Python would give, for either metric direction."""

from __future__ import annotations

import random

import pytest

from evalsite.datasets.models import Dataset, DatasetVersion, Item
from evalsite.evals.models import EvalRun, ItemResult, ResultStatus, RunStatus
from evalsite.evals.selectors import compare_page_rows, compare_regressions, compare_rows
from models.models import ModelFamily, ModelVersion, VersionStatus

pytestmark = pytest.mark.django_db

N = 60


def _runs() -> tuple[EvalRun, EvalRun]:
    """Two finished runs over N items: A misses item 0, B failed on items 1 and 2, A on item 3,
    ties on items 4-5, random values elsewhere."""
    version = DatasetVersion.objects.create(
        dataset=Dataset.objects.create(name="compare-rows"), content_hash="0" * 64, item_count=N
    )
    items = Item.objects.bulk_create(
        Item(version=version, stem=f"s{i:03d}", image="x.png", image_sha256="0" * 64,
             mask="m.png", mask_sha256="0" * 64, width=8, height=8, fg_fraction=0.2)
        for i in range(N)
    )  # fmt: skip
    family = ModelFamily.objects.create(name="compare-rows")
    runs = []
    for k in range(2):
        mv = ModelVersion.objects.create(
            family=family, version=f"{k + 1}.0.0", format="builtin", spec={},
            status=VersionStatus.READY, sha256=f"cr{k}",
        )  # fmt: skip
        runs.append(EvalRun.objects.create(
            model_version=mv, dataset_version=version, config_hash=f"cr{k}",
            status=RunStatus.DONE,
        ))  # fmt: skip
    rng = random.Random(7)
    rows = []
    for i, item in enumerate(items):
        for k, run in enumerate(runs):
            if k == 0 and i == 0:
                continue
            failed = (k == 1 and i in (1, 2)) or (k == 0 and i == 3)
            value = 0.5 if i in (4, 5) else round(rng.random(), 6)
            rows.append(ItemResult(
                run=run, item=item, status=ResultStatus.FAILED if failed else ResultStatus.OK,
                iou=None if failed else value, mae=None if failed else 1 - value,
            ))  # fmt: skip
    ItemResult.objects.bulk_create(rows)
    return runs[0], runs[1]


def _reference(a: EvalRun, b: EvalRun, metric: str, lower_is_better: bool) -> list[int]:
    left = {r.item_id: r for r in ItemResult.objects.filter(run=a)}
    keyed = []
    for r in ItemResult.objects.filter(run=b):
        base = left.get(r.item_id)
        if base is None:
            continue
        va, vb = getattr(base, metric), getattr(r, metric)
        delta = None if va is None or vb is None else vb - va
        sign = -1.0 if lower_is_better else 1.0
        keyed.append(((delta is not None, sign * (delta or 0.0), r.item_id), r.item_id))
    return [item_id for _, item_id in sorted(keyed)]


@pytest.mark.parametrize(("metric", "lower_is_better"), [("iou", False), ("mae", True)])
def test_compare_rows_pair_and_order_like_a_full_pairing(metric: str, lower_is_better: bool):
    a, b = _runs()
    rows = compare_rows(a, b, metric=metric)
    expected = _reference(a, b, metric, lower_is_better)
    assert [r.item_id for r in rows] == expected
    assert len(expected) == N - 1  # the item A never scored is not compared
    # failures lead (no delta), then the largest drop in quality
    assert {r.item_id for r in list(rows)[:3]} == {
        i.pk for i in Item.objects.filter(stem__in=["s001", "s002", "s003"])
    }
    worse = sum(
        1 for r in rows if r.delta is not None and (r.delta > 0 if lower_is_better else r.delta < 0)
    )
    assert compare_regressions(rows, metric=metric) == worse > 0


def test_compare_page_rows_carry_both_results_of_the_page():
    a, b = _runs()
    page = list(compare_rows(a, b, metric="iou")[10:20])
    shown = compare_page_rows(a, page, metric="iou")
    assert [row["item"].pk for row in shown] == [r.item_id for r in page]
    for row in shown:
        assert row["a"].run_id == a.pk and row["b"].run_id == b.pk
        assert row["a"].item_id == row["b"].item_id == row["item"].pk
        assert row["va"] == row["a"].iou and row["vb"] == row["b"].iou
        assert row["delta"] == pytest.approx(row["vb"] - row["va"])


def test_compare_row_links_are_the_reversed_urls():
    from django.urls import reverse

    from evalsite.evals.views.browse import item_links

    links = item_links(7)
    for item_id in (0, 1, 10, 123456):
        assert links(item_id) == (
            reverse("evals:item", args=[7, item_id]),
            reverse("evals:file", args=[7, item_id, "web_cutout"]),
        )
