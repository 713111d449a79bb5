"""The latency tail rule: p99 only from 100 measurements, the max (named so) below."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.stats.latency import (
    TAIL_MIN_N,
    latency_stats,
    latency_summary,
    stage_view,
    tail_text,
)


def test_thirty_images_give_the_max_labelled_max_and_no_p99():
    values = np.random.default_rng(0).gamma(2.0, 10.0, 30)
    s = latency_stats(values)
    assert s["n"] == 30 and s["tail"] == "max"
    assert s["p99"] is None
    assert s["tail_ms"] == s["max"] == float(values.max())
    assert s["p50"] == pytest.approx(float(np.median(values)))
    # numpy's p99 of 30 values is below the max: that number must never be shown as a p99
    assert float(np.percentile(values, 99)) < s["max"]
    assert tail_text(s).startswith(f"max {values.max():.1f} ms (n=30; p99 needs {TAIL_MIN_N})")


def test_from_100_images_the_tail_is_numpys_p99():
    values = np.random.default_rng(1).gamma(2.0, 10.0, TAIL_MIN_N)
    s = latency_stats(values)
    assert s["tail"] == "p99"
    assert s["p99"] == s["tail_ms"] == pytest.approx(float(np.percentile(values, 99)))
    assert s["max"] == float(values.max())
    assert tail_text(s) == f"p99 {s['p99']:.1f} ms (n=100)"


def test_empty_and_non_finite_input():
    assert latency_stats([])["n"] == 0 and latency_stats([])["tail_ms"] is None
    with pytest.raises(ValueError, match="finite"):
        latency_stats([1.0, float("nan")])


def test_an_old_stored_summary_below_100_loses_its_fake_p99():
    old = {"p50": 10.0, "p90": 20.0, "p99": 29.0, "mean": 12.0}  # stored before `max` existed
    view = stage_view(old, 30)
    assert view["p99"] is None and view["tail"] == "max" and view["tail_ms"] is None
    assert stage_view(old, 150)["tail_ms"] == 29.0
    new = latency_stats(np.arange(30.0))
    assert stage_view(new, 30)["tail_ms"] == 29.0


def test_run_latency_summary_groups_by_device_and_leaves_unmeasured_out():
    records = [
        {"device": "cpu", "preprocess": 1.0, "model": 10.0, "total": 12.0},
        {"device": "cpu", "preprocess": 3.0, "model": 20.0, "total": 25.0},
        {"device": "iPhone", "total": 7.0},  # a device CSV with only `image,ms`
        {},  # an imported item without latency
        None,
        {"model": 4.0, "total": 5.0},  # no device named
    ]
    s = latency_summary(records, warmups=2)
    assert s["warmup_excluded"] == 2
    assert set(s["devices"]) == {"cpu", "iPhone", "unknown"}
    cpu = s["devices"]["cpu"]
    assert cpu["n"] == 2 and set(cpu["stages"]) == {"preprocess", "model", "total"}
    assert cpu["stages"]["model"] == latency_stats([10.0, 20.0])
    assert set(s["devices"]["iPhone"]["stages"]) == {"total"}  # "not measured", never zeros
