"""Mask metrics: thresholded IoU/precision/recall/boundary F and the SOD family (PySODMetrics 1.6).

Conventions are fixed in docs/contracts/metrics.md and repeated in `functional`'s docstrings.
Pure numpy/OpenCV: no torch, no Django.
"""

from __future__ import annotations

from .aggregate import MetricAggregator
from .functional import (
    CURVE_KEYS,
    SCALAR_KEYS,
    adaptive_e_measure,
    adaptive_f_measure,
    binarise,
    binary_boundary_f,
    binary_iou,
    binary_precision,
    binary_recall,
    e_measure_curve,
    evaluate_pair,
    f_measure_curves,
    mae,
    mask_iou,
    s_measure,
    weighted_f_measure,
)

__all__ = [
    "CURVE_KEYS",
    "SCALAR_KEYS",
    "MetricAggregator",
    "adaptive_e_measure",
    "adaptive_f_measure",
    "binarise",
    "binary_boundary_f",
    "binary_iou",
    "binary_precision",
    "binary_recall",
    "e_measure_curve",
    "evaluate_pair",
    "f_measure_curves",
    "mae",
    "mask_iou",
    "s_measure",
    "weighted_f_measure",
]
