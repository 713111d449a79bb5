"""Leaderboard uncertainty: the refresh job stores a bootstrap interval per metric cell and a rank
interval per version; the page shows them and computes nothing."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from evalsite.evals.models import ItemResult
from evalsite.releases.models import LeaderboardRow
from evalsite.releases.services.leaderboard import leaderboard_refresh
from pipelines.metrics.registry import leaderboard_metrics
from tests.evals.factories import user_with
from tests.releases.builders import build_release_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def _column(run_id: int, column: str) -> np.ndarray:
    rows = ItemResult.objects.filter(run_id=run_id, status="ok").order_by("item_id")
    return np.array(rows.values_list(column, flat=True), dtype=np.float64)


def test_refresh_stores_cell_intervals_from_a_direct_percentile_bootstrap_and_rank_ranges():
    world = build_release_world(loss=None, gain=0.2)  # the candidate is clearly better
    leaderboard_refresh()
    rows = {r.version: r for r in LeaderboardRow.objects.all()}
    cand = rows["1.1.0"]
    iou = _column(world.candidate.pk, "iou")
    # A direct numpy percentile bootstrap over the run's images, seeded as the job is (seed 0,
    # 1000 rounds, one draw of images shared by the run's metrics).
    draw = np.random.default_rng(0).integers(0, len(iou), size=(1000, len(iou)), dtype=np.int32)
    low, high = np.quantile(iou[draw].mean(axis=1), [0.025, 0.975])
    assert cand.intervals["n"] == len(iou) == 90
    assert cand.intervals["metrics"]["iou"] == pytest.approx([low, high], abs=1e-12)
    assert set(cand.intervals["metrics"]) == {m.name for m in leaderboard_metrics()}
    for m in leaderboard_metrics():
        lo, hi = cand.intervals["metrics"][m.name]
        assert lo <= getattr(cand, m.name) <= hi
    # The mean per-image max F cell is the mean of the per-image max F column.
    assert cand.image_max_f == pytest.approx(_column(world.candidate.pk, "max_f").mean())
    assert (cand.rank, cand.rank_low, cand.rank_high, cand.rank_items) == (1, 1, 1, 90)
    base = rows["1.0.0"]
    assert (base.rank, base.rank_low, base.rank_high) == (2, 2, 2)


def test_versions_the_data_cannot_separate_share_a_rank_range_on_the_page():
    world = build_release_world(loss=None, gain=0.0)  # same quality, only noise between them
    leaderboard_refresh()
    rows = list(LeaderboardRow.objects.all())
    assert {(r.rank_low, r.rank_high) for r in rows} == {(1, 2)}
    client = Client()
    client.force_login(user_with("researcher"))
    page = client.get(reverse("releases:leaderboard"), {"set": world.version.pk}).content.decode()
    assert page.count(">1–2<") == 2
    assert "95 % bootstrap interval" in page
    # Each metric cell shows its stored interval, formatted with the registry's digits.
    row = rows[0]
    lo, hi = row.intervals["metrics"]["iou"]
    assert re.search(rf"\[{lo:.3f}, {hi:.3f}\]", page)
