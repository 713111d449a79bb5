"""Shape a stored fairness JSON for the templates (rows, words, plot data); no queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.fairness.grouping import display_group
from pipelines.metrics.registry import label
from pipelines.metrics.registry import lower_is_better as registry_lower
from pipelines.payloads.fairness import PairedFairness

ATTRIBUTE_LABELS = {
    "skin_tone": "skin tone (Monk)",
    "perceived_gender": "perceived gender",
    "skin_tone_x_perceived_gender": "skin tone × perceived gender",
}


def _cell(metric: str, v: dict[str, Any]) -> dict[str, Any]:
    return {"metric": metric, "label": label(metric), **v}


def _row(g: Mapping[str, Any], metrics: list[str]) -> dict[str, Any]:
    """One group's table row: its labels, size and a cell per metric (in `metrics` order)."""
    return {
        "attribute": ATTRIBUTE_LABELS.get(g["attribute"], g["attribute"]),
        "name": display_group(g["attribute"], g["group"]),
        "n": g["n"],
        "too_small": g["too_small"],
        "cells": [_cell(m, g["metrics"][m]) for m in metrics],
    }


def judged_groups(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How many groups reached the minimum size (were judged) and how many did not.

    "No flags" means something only when at least one group was judged; with none, the report
    says that nothing could be judged (and the pages show it in a neutral style).
    """
    judged = [g for g in groups if not g.get("too_small")]
    small = [g for g in groups if g.get("too_small")]
    largest = max((int(g.get("n") or 0) for g in groups), default=0)
    return {"judged": len(judged), "not_judged": len(small), "largest_n": largest,
            "nothing_judged": not judged}  # fmt: skip


def report_context(doc: dict[str, Any]) -> dict[str, Any]:
    metrics = list(doc.get("overall", {}))
    rows = [_row(g, metrics) for g in doc["groups"]]
    plot = {
        "metrics": [
            {
                "key": m,
                "label": label(m),
                "lower_is_better": m in registry_lower(),
            }
            for m in metrics
        ],
        "overall": doc.get("overall", {}),
        "groups": [
            {
                "label": display_group(g["attribute"], g["group"]),
                "attribute": g["attribute"],
                "n": g["n"],
                "too_small": g["too_small"],
                "metrics": g["metrics"],
            }
            for g in doc["groups"]
        ],
    }
    summary = []
    for m, s in doc.get("summary", {}).items():
        worst, gap = s.get("worst_group"), s.get("largest_gap")
        summary.append(
            {
                "label": label(m),
                "worst": display_group(worst["attribute"], worst["group"]) if worst else None,
                "worst_mean": worst["mean"] if worst else None,
                "gap_group": display_group(gap["attribute"], gap["group"]) if gap else None,
                "gap": gap["gap"] if gap else None,
                "gap_ci": gap["gap_ci"] if gap else None,
                "gap_flagged": bool(gap and gap.get("flagged")),
            }
        )
    contrast = doc.get("contrast")
    contrast_rows = []
    if contrast:
        for row in contrast["adjusted"]:
            cell = row["metrics"].get("iou", {})
            contrast_rows.append(
                {"name": display_group("skin_tone", row["group"]), "n": row["n"], **cell}
            )
    flagged_groups: dict[tuple[str, str], dict[str, Any]] = {}
    for f in doc["flags"]:  # one strip per flagged group: its worst images on the first metric
        entry = flagged_groups.setdefault(
            (f["attribute"], f["group"]),
            {
                "name": display_group(f["attribute"], f["group"]),
                "texts": [],
                "worst": f.get("worst", []),
                "worst_metric": label(f["metric"]),
            },
        )
        entry["texts"].append(f["text"])
    crowd = []
    for c in doc.get("crowd") or []:
        tables = []
        for attribute, rates in c["attributes"].items():
            rows_c = [{**g, "name": display_group(attribute, g["group"])} for g in rates["groups"]]
            tables.append(
                {
                    "attribute": ATTRIBUTE_LABELS.get(attribute, attribute),
                    "rows": rows_c,
                    "agreement_p": rates["agreement_p"],
                    "agreement_differs": rates["agreement_differs"],
                }
            )
        crowd.append({**c, "tables": tables})
    return {
        "judgement": judged_groups(doc["groups"]),
        "crowd": crowd,
        "doc": doc,
        "synthetic": doc.get("synthetic_labels", False),
        "metrics": metrics,
        "metric_labels": [label(m) for m in metrics],
        "rows": rows,
        "flags": doc["flags"],
        "flagged_groups": list(flagged_groups.values()),
        "plot": plot,
        "summary_rows": summary,
        "contrast": contrast,
        "contrast_rows": contrast_rows,
        "too_small": [r for r in rows if r["too_small"]],
    }


def compare_context(paired: PairedFairness) -> dict[str, Any]:
    groups = list(paired.groups)
    metrics = paired.metrics
    rows = [_row(g, metrics) for g in groups]
    return {
        "judgement": judged_groups(groups),
        "paired": paired,
        "rows": rows,
        "synthetic": paired.synthetic_labels,
        "metric_labels": [label(m) for m in metrics],
    }
