"""Two runs' stored per-group paired deltas (`PairedFairness`): rows stored before the class
read as version 1, an unknown version or a missing key is refused by name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipelines.fairness import paired_attribute_deltas
from pipelines.payloads import PayloadError
from pipelines.payloads.fairness import PairedFairness

pytestmark = pytest.mark.no_services


def _legacy_row() -> dict[str, Any]:
    """What a comparison stored before rows carried a version (no version, no run ids in a
    message row)."""
    rng = np.random.default_rng(0)
    iou = rng.uniform(0.5, 0.9, 80)
    groups = paired_attribute_deltas(
        {"iou": iou}, {"iou": iou - 0.05}, ["1"] * 40 + ["9"] * 40, ["man", "woman"] * 40,
        min_group_size=30, rounds=50,
    )  # fmt: skip
    return {"baseline": 3, "candidate": 4, "n": 80, "min_group_size": 30,
            "attribute_revision": 2, "synthetic_labels": False, "groups": groups}  # fmt: skip


def test_a_legacy_row_reads_as_version_1_and_round_trips_with_a_version():
    paired = PairedFairness.from_dict(_legacy_row())

    assert paired.version == 1 and paired.available and paired.metrics == ["iou"]
    assert (paired.baseline, paired.candidate, paired.n) == (3, 4, 80)
    assert {g["attribute"] for g in paired.groups} >= {"skin_tone", "perceived_gender"}
    assert PairedFairness.from_dict(paired.to_dict()) == paired
    assert paired.to_dict() == {**_legacy_row(), "version": 1}


def test_a_legacy_message_row_reads_as_unavailable_with_its_message():
    paired = PairedFairness.from_dict({"message": "no person attributes"})

    assert not paired.available and paired.message == "no person attributes"
    assert paired.groups == () and paired.baseline is None
    again = PairedFairness.unavailable("no person attributes", baseline=1, candidate=2)
    assert PairedFairness.from_dict(again.to_dict()) == again


def test_an_unknown_version_is_refused_by_name():
    with pytest.raises(PayloadError, match=r"paired fairness: unknown version 2"):
        PairedFairness.from_dict({**_legacy_row(), "version": 2})


@pytest.mark.parametrize("key", ["groups", "n", "attribute_revision", "synthetic_labels"])
def test_a_missing_key_is_named(key: str):
    row = _legacy_row()
    del row[key]
    with pytest.raises(PayloadError, match=rf"paired fairness: missing key '{key}'"):
        PairedFairness.from_dict(row)


def test_a_group_row_missing_its_metrics_is_named():
    row = _legacy_row()
    del row["groups"][0]["metrics"]
    with pytest.raises(PayloadError, match=r"paired fairness group: missing key 'metrics'"):
        PairedFairness.from_dict(row)


def test_a_run_id_that_is_not_an_integer_is_named():
    with pytest.raises(PayloadError, match=r"paired fairness: candidate must be an integer"):
        PairedFairness.from_dict({**_legacy_row(), "candidate": "4"})
