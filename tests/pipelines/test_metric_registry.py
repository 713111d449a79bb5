"""The metric registry: one entry per computation, each with a distinct human label."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.metrics.aggregate import MEAN_KEYS, MetricAggregator
from pipelines.metrics.functional import SCALAR_KEYS
from pipelines.metrics.registry import (
    BY_NAME,
    METRICS,
    by_column,
    image_key_label,
    image_means,
    label,
    lower_is_better,
    metric,
    run_metrics,
    stored_metrics,
)


def test_names_and_labels_are_unique_and_labels_are_words_not_keys():
    assert len({m.name for m in METRICS}) == len(METRICS)
    assert len({m.label for m in METRICS}) == len(METRICS)
    for m in METRICS:
        assert "_" not in m.label and m.definition.endswith(".")
        assert m.direction in ("higher", "lower") and m.precision >= 2


def test_every_summary_key_of_the_metrics_command_is_a_registry_metric():
    # The command's summary keys (a contract) are registry names; per-image means of them carry
    # the same key as their column, set-curve numbers have no column.
    assert set(SCALAR_KEYS) <= set(BY_NAME)
    assert set(MEAN_KEYS) == {k for k in SCALAR_KEYS if BY_NAME[k].column == k}
    assert {k for k in SCALAR_KEYS if BY_NAME[k].column is None} == {
        "max_f", "mean_f", "max_e", "mean_e"
    }  # fmt: skip


def test_the_two_max_f_computations_have_two_names_and_labels():
    assert label("max_f") == "max F (set curve)" and BY_NAME["max_f"].column is None
    assert label("image_max_f") == "mean per-image max F"
    assert by_column("max_f").name == "image_max_f" and image_key_label("max_f") == "max F"
    assert not BY_NAME["max_f"].per_image and BY_NAME["image_max_f"].per_image
    # Paired deltas and stored columns only exist for per-image metrics.
    assert all(m.per_image for m in stored_metrics())
    assert lower_is_better() == {"mae", "sad", "mse_alpha", "grad", "conn", "gated_rate"}
    with pytest.raises(KeyError, match="unknown metric 'maxf'"):
        metric("maxf")


def test_image_means_average_the_per_image_column_and_differ_from_the_set_curve():
    rng = np.random.default_rng(0)
    agg = MetricAggregator()
    for k in range(6):
        gt = np.zeros((40, 40), np.uint8)
        gt[5 + k : 25 + k, 8:30] = 255
        pred = np.clip(gt * 0.6 + rng.uniform(0, 120, gt.shape), 0, 255).astype(np.uint8)
        agg.update(pred, gt, name=f"img{k}")
    out = agg.compute()
    means = image_means(out["per_image"])
    assert means["image_max_f"] == pytest.approx(np.mean([r["max_f"] for r in out["per_image"]]))
    assert means["image_max_e"] == pytest.approx(np.mean([r["max_e"] for r in out["per_image"]]))
    # Each image's own best threshold is at least as good as the one best for the mean curve.
    assert means["image_max_f"] >= out["summary"]["max_f"] - 1e-12
    assert {m.name for m in run_metrics()} == set(out["summary"]) | set(means)
