"""A run summary's gating, slice and image-size sections from scored items, without a database."""

from __future__ import annotations

import pytest

from pipelines.metrics.summaries import (
    SLICE_METRICS,
    ScoredItem,
    gating_summary,
    image_size_note,
    slices,
)


def item(stem: str, *, gated: bool = False, bucket: str = "medium", tags: tuple[str, ...] = (),
         size: tuple[int, int] = (640, 480)) -> ScoredItem:  # fmt: skip
    return ScoredItem(stem=stem, gated=gated, no_subject=bucket == "none", size_bucket=bucket,
                      tags=tags, width=size[0], height=size[1])  # fmt: skip


def per_image(value: float) -> dict[str, float]:
    return {m.column or m.name: value for m in SLICE_METRICS}


def test_gating_is_counted_separately_on_no_subject_and_subject_items():
    items = [item("a", gated=True, bucket="none"), item("b", bucket="none"),
             item("c", gated=True), item("d"), item("e")]  # fmt: skip
    assert gating_summary(items) == {"gated": 2, "no_subject_items": 2, "no_subject_gated": 1,
                                     "subject_items": 3, "subject_gated": 1}  # fmt: skip


def test_slices_average_per_bucket_and_count_an_item_in_each_of_its_tags():
    items = [item("a", bucket="small", tags=("outdoor", "person")),
             item("b", bucket="small", gated=True, tags=("person",)),
             item("c", bucket="large")]  # fmt: skip
    values = {"a": per_image(0.2), "b": per_image(0.6), "c": per_image(1.0)}
    out = slices(items, values)
    buckets = {row["slice"]: row for row in out["size_bucket"]}
    assert [row["slice"] for row in out["size_bucket"]] == ["large", "small"]
    assert buckets["small"]["n"] == 2 and buckets["small"]["gated_rate"] == 0.5
    for metric in SLICE_METRICS:
        assert buckets["small"][metric.name] == pytest.approx(0.4)
        assert buckets["large"][metric.name] == pytest.approx(1.0)
    tags = {row["slice"]: row for row in out["tag"]}
    assert (tags["person"]["n"], tags["outdoor"]["n"]) == (2, 1)
    assert tags["outdoor"]["gated_rate"] == 0.0


def test_image_size_note_warns_only_below_two_megapixels():
    small = image_size_note([item("a", size=(640, 480)), item("b", size=(800, 600)),
                             item("c", size=(4000, 3000))])  # fmt: skip
    assert (small["median_width"], small["median_height"]) == (800, 600)
    assert small["note"] == "latency measured on small images (median 800×600)"
    assert image_size_note([item("a", size=(2000, 1500))])["note"] == ""
