"""Release statistics: paired per-image deltas, per-group deltas, crowd preference, gates, Holm.

Pure numpy/scipy over `pipelines.stats` (no Django): the release app gathers arrays from the
database and stores what `build_release_report` returns, so a report can be rebuilt from arrays
alone and every number on the page comes from this package.
"""

from __future__ import annotations

from .crowd import CrowdVotes, crowd_section
from .deltas import MetricDelta, paired_deltas
from .gates import Gate, GateSettings, evaluate_gates, verdict_of
from .groups import GroupDelta, group_deltas_with_flags
from .report import ReleaseInputs, build_release_report, build_suite_report

__all__ = [
    "CrowdVotes",
    "Gate",
    "GateSettings",
    "GroupDelta",
    "MetricDelta",
    "ReleaseInputs",
    "build_release_report",
    "build_suite_report",
    "crowd_section",
    "evaluate_gates",
    "group_deltas_with_flags",
    "paired_deltas",
    "verdict_of",
]
