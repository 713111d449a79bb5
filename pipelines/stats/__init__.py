"""Statistics for evaluation and crowd rating: bootstrap CIs, Bradley–Terry, agreement, QC, groups.

Pure numpy/scipy (no Django, no Celery, no torch). Conventions follow docs/contracts/metrics.md
("Confidence intervals"): the resampled unit is the sampled unit (image, or rated item with all its
votes); percentile intervals; seeded; two runs on the same images are compared with one shared draw.
"""

from __future__ import annotations

from .agreement import (
    DawidSkene,
    coincidence_matrix,
    dawid_skene,
    equal_rater_items,
    fleiss_kappa,
    krippendorff_alpha,
    ratings_to_table,
)
from .bootstrap import (
    Interval,
    PairedDelta,
    bootstrap_mean,
    bootstrap_means,
    bootstrap_statistic,
    cluster_bootstrap,
    cluster_bootstrap_mean,
    paired_bootstrap,
    paired_bootstrap_delta,
    percentile_interval,
)
from .bradley_terry import (
    BTFit,
    BTReport,
    bootstrap_strengths,
    bradley_terry,
    fit_batch,
    fit_bradley_terry,
)
from .groups import GroupReport, GroupStat, group_report, group_reports, holm_adjust, intersect
from .pairs import CHOICES, ItemPairCounts, PairRates, bt_wins, pair_rates, wilson_interval
from .qc import AnnotatorQC, annotator_qc, flagged_annotators, keep_mask

__all__ = [
    "CHOICES",
    "AnnotatorQC",
    "BTFit",
    "BTReport",
    "DawidSkene",
    "GroupReport",
    "GroupStat",
    "Interval",
    "ItemPairCounts",
    "PairRates",
    "PairedDelta",
    "annotator_qc",
    "bootstrap_mean",
    "bootstrap_means",
    "bootstrap_statistic",
    "bootstrap_strengths",
    "bradley_terry",
    "bt_wins",
    "cluster_bootstrap",
    "cluster_bootstrap_mean",
    "coincidence_matrix",
    "dawid_skene",
    "equal_rater_items",
    "fit_batch",
    "fit_bradley_terry",
    "flagged_annotators",
    "fleiss_kappa",
    "group_report",
    "group_reports",
    "holm_adjust",
    "intersect",
    "keep_mask",
    "krippendorff_alpha",
    "pair_rates",
    "paired_bootstrap",
    "paired_bootstrap_delta",
    "percentile_interval",
    "ratings_to_table",
    "wilson_interval",
]
