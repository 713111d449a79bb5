"""Fairness statistics (pure compute): groups from attribute labels, per-run reports with flags,
paired per-group deltas of two runs, crowd preference by group, contrast-stratified gaps.

The Django app ``evalsite.fairness`` loads per-image results and labels, calls these functions and
stores their output; nothing here imports Django or Celery.
"""

from .contrast import contrast_stratified_gaps
from .crowd import crowd_group_rates
from .grouping import (
    ATTRIBUTES,
    DEFAULT_TONE_GROUPS,
    attribute_labels,
    display_group,
    parse_tone_groups,
)
from .paired import paired_attribute_deltas, paired_group_deltas
from .report import METRICS, FairnessSettings, fairness_report

__all__ = [
    "ATTRIBUTES",
    "DEFAULT_TONE_GROUPS",
    "METRICS",
    "FairnessSettings",
    "attribute_labels",
    "contrast_stratified_gaps",
    "crowd_group_rates",
    "display_group",
    "fairness_report",
    "paired_attribute_deltas",
    "paired_group_deltas",
    "parse_tone_groups",
]
