"""Instance lifts, evaluated one by one (pipelines.metrics.instances): one-to-one matching at
IoU >= 0.5, per-instance IoU and Boundary IoU, missed and extra instances, count; the run summary's
per-image means beside the figures pooled over instances; release-report deltas and gates."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.metrics.functional import mask_iou
from pipelines.metrics.instances import (
    ITEM_KEYS,
    Lift,
    item_columns,
    item_scores,
    item_values,
    lifts,
    match_instances,
    summarise,
)
from pipelines.release import GateSettings
from pipelines.release.report import ReleaseInputs, build_release_report
from tests.pipelines.matting_reference import boundary_iou as reference_boundary_iou

pytestmark = pytest.mark.no_services


def box(y0: int, y1: int, x0: int, x1: int, size: int = 20) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_each_ground_truth_instance_gets_one_partner_and_the_numbering_is_one_based():
    gt = [box(0, 10, 0, 10), box(10, 20, 10, 20)]
    pred = [box(10, 20, 10, 18), box(0, 10, 0, 10)]
    out = match_instances(gt, pred).as_dict()
    assert [(p["gt"], p["pred"]) for p in out["pairs"]] == [(1, 2), (2, 1)]
    assert [p["iou"] for p in out["pairs"]] == pytest.approx([1.0, 0.8])
    assert out["matched_iou"] == pytest.approx([1.0, 0.8])
    assert out["missed"] == [] and out["extra"] == [] and out["count_correct"]
    assert out["recall"] == out["precision"] == 1.0
    assert out["instance_iou"] == pytest.approx(0.9) == out["mean_matched_iou"]


def test_boundary_iou_of_each_pair_is_the_reference_boundary_iou():
    rng = np.random.default_rng(0)
    gt = [box(5, 60, 5, 40, 80), box(10, 70, 45, 75, 80)]
    pred = [g.copy() for g in gt]
    pred[0][5:20, 30:40] = False  # a bite out of the first
    pred[1] = np.roll(pred[1], 2, axis=1)
    pred[1] &= rng.random(pred[1].shape) > 0.02
    out = match_instances(gt, pred).as_dict()
    for p in out["pairs"]:
        g, q = gt[p["gt"] - 1], pred[p["pred"] - 1]
        assert p["iou"] == pytest.approx(mask_iou(g, q))
        ref = reference_boundary_iou(g.astype(np.uint8), q.astype(np.uint8))
        assert p["boundary_iou"] == pytest.approx(ref, rel=1e-12)
    assert 0 < out["instance_boundary_iou"] < 1


def test_missed_extra_and_below_threshold_overlaps():
    gt = [box(0, 10, 0, 10), box(10, 20, 10, 20)]
    pred = [box(0, 10, 0, 4), box(12, 20, 0, 6)]  # IoU 0.4 with GT 1; nothing near GT 2
    out = match_instances(gt, pred).as_dict()
    assert out["pairs"] == [] and out["missed"] == [1, 2] and out["extra"] == [1, 2]
    assert out["matched_iou"] == [0.0, 0.0] and out["recall"] == 0.0 and out["precision"] == 0.0
    assert out["count_correct"]  # two and two: the count is right even though nothing matched
    none = match_instances(gt, []).as_dict()
    assert none["missed"] == [1, 2] and not none["count_correct"] and none["precision"] == 0.0
    # exactly at the threshold counts (IoU >= 0.5)
    half = match_instances([box(0, 10, 0, 10)], [box(0, 10, 0, 5)]).as_dict()
    assert half["pairs"][0]["iou"] == 0.5


def test_one_to_one_maximises_the_summed_iou():
    """Greedy by IoU would pair GT 1 with its best partner (0.9) and leave GT 2 unmatched; the
    assignment matches both (0.6 + 0.64). Instances may overlap in the inputs it is given."""
    g1, g2 = box(0, 10, 0, 10), box(0, 10, 3, 12)
    p1, p2 = box(0, 10, 1, 10), box(0, 10, 0, 6)
    assert mask_iou(g1, p1) == pytest.approx(0.9) and mask_iou(g2, p2) < 0.5
    out = match_instances([g1, g2], [p1, p2]).as_dict()
    assert {(p["gt"], p["pred"]) for p in out["pairs"]} == {(1, 2), (2, 1)}
    assert out["missed"] == [] and out["extra"] == []


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="differ in size"):
        match_instances([box(0, 5, 0, 5)], [np.zeros((10, 10), bool)])
    with pytest.raises(ValueError, match="threshold"):
        match_instances([], [], threshold=0)


def test_the_summary_shows_per_image_means_and_names_the_pooled_figures():
    big = match_instances([box(0, 5, 0, 5)] * 1, [box(0, 5, 0, 5)]).as_dict()  # 1 of 1
    many_gt = [box(0, 2, 0, 2), box(3, 5, 0, 2), box(6, 8, 0, 2), box(9, 11, 0, 2)]
    crowd = match_instances(many_gt, [many_gt[0]]).as_dict()  # 1 of 4
    s = summarise([big, crowd, {}])  # an item without instance masks is left out
    assert s is not None and s["items"] == 2
    assert s["instance_recall"] == pytest.approx((1 + 0.25) / 2)  # per-image mean
    assert s["pooled"]["instance_recall"] == pytest.approx(2 / 5)  # pooled over instances
    assert s["instance_iou"] == pytest.approx((1 + 0.25) / 2)
    assert s["pooled"]["instance_iou"] == pytest.approx(2 / 5)
    assert s["instance_count_ok"] == 0.5 and s["count_accuracy"] == 0.5
    assert (s["gt_instances"], s["pred_instances"], s["matched"], s["missed"], s["extra"]) == (
        5, 2, 2, 3, 0,
    )  # fmt: skip
    assert summarise([{}, {"error": "sizes differ"}]) is None


def test_rows_stored_before_boundary_iou_existed_still_summarise():
    old = {"gt_count": 2, "pred_count": 2, "count_correct": True, "matched_iou": [0.9, 0.0],
           "mean_matched_iou": 0.45}  # fmt: skip
    values = item_values(old)
    assert values == {"instance_iou": 0.45, "instance_boundary_iou": None,
                      "instance_recall": 0.5, "instance_count_ok": 1.0}  # fmt: skip
    s = summarise([old])
    assert s is not None and s["instance_boundary_iou"] is None and s["instance_iou"] == 0.45


def inputs(with_instances: bool) -> ReleaseInputs:
    rng = np.random.default_rng(1)
    n = 40
    base = {"iou": rng.uniform(0.7, 0.9, n), "mae": rng.uniform(0.02, 0.05, n)}
    cand = {k: v + 0.01 * (1 if k == "iou" else -1) for k, v in base.items()}
    inst_b = {
        "instance_iou": rng.uniform(0.6, 0.9, 12),
        "instance_boundary_iou": rng.uniform(0.3, 0.6, 12),
        "instance_recall": rng.uniform(0.5, 1.0, 12),
        "instance_count_ok": (rng.random(12) > 0.5) * 1.0,
    }
    inst_c = {k: v - 0.2 for k, v in inst_b.items()}  # clearly worse lifts
    return ReleaseInputs(
        candidate="f@2", baseline="f@1", dataset="groups@1", runs={"candidate": 2, "baseline": 1},
        items=[{"id": i, "stem": f"s{i}"} for i in range(n)],
        baseline_metrics=base, candidate_metrics=cand,
        baseline_gated=np.zeros(n, bool), candidate_gated=np.zeros(n, bool),
        no_subject=np.zeros(n, bool), latency={}, postprocess={},
        instance_baseline=inst_b if with_instances else {},
        instance_candidate=inst_c if with_instances else {},
    )  # fmt: skip


def test_release_reports_pair_instance_metrics_on_their_own_items_and_gate_them_when_enabled():
    settings = GateSettings(metric_margins={"iou": 0.01, "instance_iou": 0.02}, min_win_rate=None,
                            min_votes=0, fairness_attributes=(), rounds=200)  # fmt: skip
    report = build_release_report(inputs(True), settings)
    inst = report["metrics"]["instance_iou"]
    assert inst["n"] == 12 and report["metrics"]["iou"]["n"] == 40
    assert inst["delta"] == pytest.approx(-0.2)
    gates = {g["name"]: g for g in report["gates"]}
    assert gates["instance IoU non-inferiority"]["status"] == "fail"
    assert gates["IoU non-inferiority"]["status"] == "pass"
    assert report["verdict"] == "fail"
    # not enabled: reported, not gated
    quiet = build_release_report(inputs(True), GateSettings(
        metric_margins={"iou": 0.01}, min_win_rate=None, min_votes=0, fairness_attributes=(),
        rounds=200))  # fmt: skip
    assert "instance_iou" in quiet["metrics"] and quiet["verdict"] == "pass"
    assert not any("instance" in g["name"] for g in quiet["gates"])
    # enabled on a report whose sets have no instance masks: insufficient, never silently absent
    bare = build_release_report(inputs(False), settings)
    gate = {g["name"]: g for g in bare["gates"]}["instance IoU non-inferiority"]
    assert gate["status"] == "insufficient" and "instance masks" in gate["text"]
    assert "instance_iou" not in bare["metrics"]


def test_an_items_scores_need_instance_masks_of_the_predictions_size():
    gt, pred = [box(0, 10, 0, 10), box(10, 20, 10, 20)], [box(0, 10, 0, 10)]
    assert item_scores([], pred, (20, 20)) == {}
    assert item_scores(gt, pred, (20, 30)) == {
        "error": "instance masks differ in size from the prediction"
    }
    scores = item_scores(gt, pred, (20, 20))
    assert scores == match_instances(gt, pred).as_dict()
    assert item_columns(scores) == {"instance_iou": 0.5, "instance_boundary_iou": 0.5,
                                    "instance_recall": 0.5, "instance_count_ok": 0.0}  # fmt: skip
    assert item_columns({}) == dict.fromkeys(ITEM_KEYS)
    assert item_columns(item_scores(gt, pred, (20, 30))) == dict.fromkeys(ITEM_KEYS)


def test_lifts_number_ground_truth_instances_and_count_a_pair_without_cutout_as_missed():
    gt = [box(0, 10, 0, 10), box(10, 20, 10, 20), box(0, 5, 15, 20)]
    pred = [box(10, 20, 10, 20), box(0, 10, 0, 9)]
    scores = match_instances(gt, pred).as_dict()
    both = lifts(scores, cutouts=2)
    assert sorted(both) == [1, 2, 3]
    assert (both[1].pred, both[2].pred, both[3]) == (2, 1, Lift(None, 0.0, 0.0))
    assert both[1].iou == pytest.approx(0.9) and both[2].iou == 1.0
    assert both[1].boundary_iou == scores["pairs"][0]["boundary_iou"]
    assert lifts(scores, cutouts=1)[1] == Lift(None, 0.0, 0.0)  # cutout 2 was never written
    assert lifts({}, cutouts=3) == {}
