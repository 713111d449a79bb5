"""The one registry of metrics: every page, plot axis, export, gate, fairness table and leaderboard
column takes its metric names, labels, directions and digits from here.

Why one list: the same metric restated in several places drifted (two different computations were
both shown as "max F"). A metric's `name` is its canonical key (summary JSON, report JSON, stored
leaderboard column, URL parameter); its `label` is what people read. Two computations that differ
get two names and two labels that say which:

* ``max_f`` — "max F (set curve)": the maximum over thresholds of the F-measure curve averaged over
  images (PySODMetrics' dataset convention, the number papers quote). It is a set-level value, not a
  mean of per-image values, so it has no per-image bootstrap interval and no paired delta.
* ``image_max_f`` — "mean per-image max F": each image's own best threshold, averaged over images.
  Always at least ``max_f``. Per-image, so it has intervals and paired deltas.

The same holds for E-measure (``max_e`` / ``image_max_e``) and the curve means (``mean_f``,
``mean_e``). Per-image rows (the metrics command's ``per_image``, `ItemResult` columns) keep the
contract's keys: there ``max_f`` is one image's max F, which is the `column` of ``image_max_f``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

HIGHER, LOWER = "higher", "lower"
MEAN_OVER_IMAGES = "mean over images"


@dataclass(frozen=True)
class Metric:
    """One metric as shown to people."""

    name: str
    label: str
    definition: str
    direction: str = HIGHER
    aggregation: str = MEAN_OVER_IMAGES
    precision: int = 3
    # Key of the per-image value whose mean over images this metric is (a `per_image` row key of
    # the metrics command); None for a set-level value such as the max of the mean curve.
    column: str | None = None
    # Label of one image's value (the item browser, per-image exports and deltas).
    item_label: str = ""
    # `ItemResult` has a float column named `column` (sortable in SQL, paired in reports).
    stored: bool = False
    leaderboard: bool = False
    fairness: bool = False
    # Shown on a run's summary (the run page, its exports).
    run: bool = True
    # Shown per slice (size bucket, tag) of a run.
    slices: bool = False
    # Defined only on items with instance masks: averaged, paired and gated over those items
    # (pipelines.metrics.instances), shown in a run's instance section rather than its summary.
    instances: bool = False
    # The largest value the metric can take: 1 for shares and scores, None for the matting
    # errors (SAD, gradient, connectivity), which grow with the image. Gate margins are bounded
    # by it (a margin beyond the whole range would never test anything).
    upper: float | None = 1.0

    @property
    def lower_is_better(self) -> bool:
        return self.direction == LOWER

    @property
    def per_image(self) -> bool:
        """A mean of per-image values: it has a bootstrap interval over images and paired deltas."""
        return self.column is not None

    @property
    def image_label(self) -> str:
        return self.item_label or self.label

    def format(self, value: float | None) -> str:
        """The value as every page shows it ("—" when missing)."""
        return "—" if value is None else f"{float(value):.{self.precision}f}"


def _m(name: str, label: str, definition: str, **kw: Any) -> Metric:
    return Metric(name=name, label=label, definition=definition, **kw)


def _threshold_sweep(x: str, measure: str, **image_max: Any) -> tuple[Metric, ...]:
    """The four summaries of a measure (`x`: "F" or "E"; `measure` as the definitions name it)
    swept over 256 thresholds: each image's best threshold averaged over images (flagged with
    `image_max`), the max and the mean of the set's mean curve, and the adaptive threshold."""
    k = x.lower()
    return (
        _m(f"image_max_{k}", f"mean per-image max {x}",
           f"Each image's {measure} at its own best threshold, averaged over images.",
           aggregation=f"mean over images of each image's best-threshold {x}",
           column=f"max_{k}", item_label=f"max {x}", stored=True, **image_max),
        _m(f"max_{k}", f"max {x} (set curve)",
           f"Best {measure} over 256 thresholds of the {x} curve averaged over images.",
           aggregation=f"max of the set's mean {x} curve"),
        _m(f"mean_{k}", f"mean {x} (set curve)",
           f"Mean over 256 thresholds of the {x}-measure curve averaged over images.",
           aggregation=f"mean of the set's mean {x} curve",
           item_label=f"mean {x} over thresholds"),
        _m(f"adaptive_{k}", f"adaptive {x}",
           f"{x}-measure at the threshold 2 × mean prediction (capped at 1).",
           column=f"adaptive_{k}"),
    )  # fmt: skip


METRICS: tuple[Metric, ...] = (
    _m("iou", "IoU", "Intersection over union of the thresholded prediction and the mask.",
       column="iou", stored=True, leaderboard=True, fairness=True, slices=True),
    _m("precision", "precision",
       "Share of the predicted foreground pixels that are foreground in the mask.",
       column="precision", stored=True, leaderboard=True, fairness=True),
    _m("recall", "recall", "Share of the mask's foreground pixels that the prediction covers.",
       column="recall", stored=True, leaderboard=True, fairness=True),
    _m("boundary_f", "boundary F",
       "F1 of boundary pixels matched within 0.75 % of the image diagonal.",
       column="boundary_f", stored=True, leaderboard=True, fairness=True, slices=True),
    _m("mae", "MAE", "Mean absolute difference between the soft prediction and the mask.",
       direction=LOWER, precision=4, column="mae", stored=True, leaderboard=True,
       fairness=True, slices=True),
    _m("s_measure", "S-measure",
       "Structural similarity of regions and objects (PySODMetrics S-measure).",
       column="s_measure", stored=True, leaderboard=True, slices=True),
    _m("weighted_f", "weighted F", "Weighted F-measure (PySODMetrics, beta = 1).",
       column="weighted_f", stored=True, slices=True),
    *_threshold_sweep("F", "F-measure (beta² = 0.3)", leaderboard=True),
    *_threshold_sweep("E", "E-measure"),
    _m("boundary_iou", "boundary IoU",
       "IoU of the thresholded prediction's and the mask's boundary bands (2 % of the diagonal).",
       column="boundary_iou", stored=True, fairness=True, slices=True),
    _m("sad", "SAD", "Sum of |alpha − mask| over the image, divided by 1000 (matting's unit).",
       direction=LOWER, precision=2, column="sad", stored=True, fairness=True, upper=None),
    _m("mse_alpha", "alpha MSE", "Mean squared difference between the alpha and the mask.",
       direction=LOWER, precision=4, column="mse_alpha", stored=True, fairness=True),
    _m("grad", "gradient error",
       "Squared difference of alpha and mask gradients (Gaussian derivative, sigma 1.4) / 1000.",
       direction=LOWER, precision=2, column="grad", stored=True, fairness=True, upper=None),
    _m("conn", "connectivity error",
       "Alpha lost from the largest connected component at thresholds 0.1 apart (matting) / 1000.",
       direction=LOWER, precision=2, column="conn", stored=True, fairness=True, upper=None),
    _m("instance_iou", "instance IoU",
       "Mean over ground-truth instances of the IoU with the matched predicted instance "
       "(one-to-one at IoU ≥ 0.5; 0 when missed).",
       aggregation="mean over images with instance masks", column="instance_iou", stored=True,
       run=False, instances=True),
    _m("instance_boundary_iou", "instance boundary IoU",
       "Mean over ground-truth instances of the Boundary IoU with the matched predicted instance "
       "(0 when missed).",
       aggregation="mean over images with instance masks", column="instance_boundary_iou",
       stored=True, run=False, instances=True),
    _m("instance_recall", "instance recall",
       "Share of the image's ground-truth instances matched by a predicted instance (IoU ≥ 0.5).",
       aggregation="mean over images with instance masks", column="instance_recall",
       stored=True, run=False, instances=True),
    _m("instance_count_ok", "instance count accuracy",
       "1 when the image has as many predicted instances as ground-truth ones, else 0.",
       aggregation="mean over images with instance masks", column="instance_count_ok",
       stored=True, run=False, instances=True),
    _m("gated_rate", "gated rate",
       "Share of the images showing a subject whose output the confidence gate hid.",
       direction=LOWER, aggregation="share of subject images", precision=2, fairness=True,
       run=False),
)  # fmt: skip

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}
#: The metric that orders the leaderboard and its rank intervals.
PRIMARY = "iou"


def metric(name: str) -> Metric:
    """The metric called `name`; KeyError naming the known ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(BY_NAME)}") from None


def label(name: str) -> str:
    """Human label of a metric name (the name itself, de-underscored, when not a metric)."""
    m = BY_NAME.get(name)
    return m.label if m else name.replace("_", " ")


def names(metrics: Iterable[Metric]) -> tuple[str, ...]:
    return tuple(m.name for m in metrics)


def run_metrics() -> tuple[Metric, ...]:
    """Metrics of a run's summary, in display order."""
    return tuple(m for m in METRICS if m.run)


def stored_metrics() -> tuple[Metric, ...]:
    """Per-image metrics with an `ItemResult` column: sorting, per-image exports, paired reports."""
    return tuple(m for m in METRICS if m.stored)


def stored_columns() -> tuple[str, ...]:
    """`ItemResult` float columns (the per-image keys of `stored_metrics`)."""
    return tuple(m.column for m in stored_metrics() if m.column)


def by_column(column: str) -> Metric:
    """The stored metric whose per-image value is `column`."""
    for m in stored_metrics():
        if m.column == column:
            return m
    raise KeyError(f"no stored metric has the per-image column {column!r}")


def instance_metrics() -> tuple[Metric, ...]:
    """Stored metrics defined only on items with instance masks."""
    return tuple(m for m in METRICS if m.instances)


def slice_metrics() -> tuple[Metric, ...]:
    return tuple(m for m in METRICS if m.slices)


def leaderboard_metrics() -> tuple[Metric, ...]:
    return tuple(m for m in METRICS if m.leaderboard)


def fairness_metrics() -> tuple[Metric, ...]:
    return tuple(m for m in METRICS if m.fairness)


def lower_is_better() -> frozenset[str]:
    """Names of the metrics where smaller is better."""
    return frozenset(m.name for m in METRICS if m.lower_is_better)


def image_means(per_image: Iterable[Mapping[str, Any]]) -> dict[str, float | None]:
    """Summary values of the per-image metrics the metrics command's summary does not carry
    (``image_max_f``, ``image_max_e``): the mean over images of their per-image column."""
    rows = list(per_image)
    out: dict[str, float | None] = {}
    for m in METRICS:
        if m.column is None or m.column == m.name or not m.run:
            continue
        values = [float(r[m.column]) for r in rows if r.get(m.column) is not None]
        out[m.name] = float(np.mean(values)) if values else None
    return out


def _by_image_key(key: str) -> Metric | None:
    for m in METRICS:
        if m.column == key:
            return m
    return BY_NAME.get(key)


def image_key_label(key: str) -> str:
    """Label of one image's value under a per-image key (`max_f` there is that image's max F)."""
    m = _by_image_key(key)
    return m.image_label if m else key.replace("_", " ")


def image_key_precision(key: str) -> int:
    m = _by_image_key(key)
    return m.precision if m else 3
