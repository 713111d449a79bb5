"""Instance-level scores: greedy IoU matching of predicted to ground-truth instances."""

from __future__ import annotations

import numpy as np
import pytest

from evalsite.evals.services.instances import match_instances

pytestmark = pytest.mark.no_services


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((20, 20), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_each_ground_truth_instance_gets_its_best_unused_match():
    gt = [box(0, 10, 0, 10), box(10, 20, 10, 20)]
    pred = [box(10, 20, 10, 18), box(0, 10, 0, 10)]
    assert match_instances(gt, pred) == pytest.approx([1.0, 0.8])


def test_a_missed_subject_scores_zero_and_poor_overlaps_do_not_match():
    gt = [box(0, 10, 0, 10), box(10, 20, 10, 20)]
    pred = [box(0, 10, 0, 4)]  # IoU 0.4 < 0.5: not the same subject
    assert match_instances(gt, pred) == [0.0, 0.0]
    assert match_instances(gt, []) == [0.0, 0.0]
