"""pipelines.stats.groups: group means (as fairlearn), bootstrap CIs, Holm-corrected flags."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame

from pipelines.stats.groups import group_report, group_reports, holm_adjust, intersect


def per_image_iou(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tone = rng.choice(["monk-1", "monk-5", "monk-9"], size=900, p=[0.4, 0.4, 0.2])
    gender = rng.choice(["female", "male"], size=900)
    iou = np.clip(rng.normal(0.85, 0.08, 900) - 0.06 * (tone == "monk-9"), 0, 1)
    return iou, tone, gender


def test_group_means_equal_fairlearn_metricframe_by_group():
    iou, tone, gender = per_image_iou()
    labels = intersect(tone, gender)
    frame = MetricFrame(
        metrics=lambda y_true, y_pred: float(np.mean(y_pred)),
        y_true=np.zeros_like(iou),
        y_pred=iou,
        sensitive_features=labels,
    )
    report = group_report(iou, labels, rounds=100, min_group_size=10)
    ours = {g.group: g.mean.estimate for g in report.groups}
    theirs = frame.by_group.to_dict()
    assert set(ours) == set(theirs)
    for group, mean in theirs.items():
        assert ours[group] == pytest.approx(mean, abs=1e-12)


def test_a_real_gap_is_flagged_after_holm_and_equal_groups_are_not():
    iou, tone, _ = per_image_iou(1)
    report = group_report(iou, tone, metric="iou", rounds=500, seed=0)
    by = {g.group: g for g in report.groups}
    assert by["monk-9"].flagged and by["monk-9"].gap.high < 0
    assert by["monk-9"].p_holm >= by["monk-9"].p_value
    assert report.worst_group == "monk-9"
    assert report.max_gap.low > 0.02
    for g in report.groups:
        assert g.mean.low < g.mean.estimate < g.mean.high
    # monk-1 and monk-5 share a distribution: each is compared with the rest (which holds monk-9),
    # so their gaps are small and positive; at most a flag, never a large gap.
    assert abs(by["monk-1"].gap.estimate) < 0.03 and abs(by["monk-5"].gap.estimate) < 0.03


def test_no_gap_no_flags_in_a_null_simulation():
    rng = np.random.default_rng(5)
    values = rng.random(1200)
    labels = rng.choice(list("abcdef"), size=1200)
    report = group_report(values, labels, rounds=200)
    assert not any(g.flagged for g in report.groups)


def test_groups_below_the_minimum_size_get_no_interval_and_leave_the_holm_family():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(0.8, 0.05, 200), rng.normal(0.3, 0.05, 5)])
    labels = np.array(["big"] * 200 + ["tiny"] * 5)
    report = group_report(values, labels, min_group_size=30, rounds=100)
    tiny = next(g for g in report.groups if g.group == "tiny")
    assert tiny.too_small and not tiny.flagged and np.isnan(tiny.mean.low)
    assert np.isnan(tiny.p_value) and np.isnan(tiny.p_holm)
    assert tiny.mean.estimate == pytest.approx(values[200:].mean())
    assert report.worst_group == "big"


def test_holm_adjustment_matches_a_hand_computation():
    # Sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, max(0.04 * 1, 0.06) = 0.06.
    np.testing.assert_allclose(holm_adjust([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    adjusted = holm_adjust([0.2, np.nan, 0.6])
    assert np.isnan(adjusted[1]) and adjusted[0] == pytest.approx(0.4)
    assert adjusted[2] == pytest.approx(0.6)


def test_metrics_share_one_draw_and_intersections_are_labelled():
    iou, _, gender = per_image_iou(3)
    reports = group_reports({"iou": iou, "iou_copy": iou.copy()}, gender, rounds=200, seed=4)
    assert reports["iou"].groups == reports["iou_copy"].groups
    assert intersect(["monk-1"], ["female"]).tolist() == ["monk-1 × female"]
