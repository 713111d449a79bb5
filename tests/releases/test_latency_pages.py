"""Latency of a 30-image run: n shown, and the tail is the max (named "max"), never a p99."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from evalsite.evals.export import run_results_document
from evalsite.evals.models import EvalRun
from evalsite.releases.models import GateConfig, LeaderboardRow
from evalsite.releases.services.leaderboard import leaderboard_refresh
from evalsite.releases.services.reports import release_report_build
from pipelines.stats.latency import latency_summary
from tests.evals.factories import user_with
from tests.releases.builders import build_release_world, world_report

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

#: 30 measurements whose slowest is 90 ms; numpy's "p99" of them would be ~87.1 ms.
TOTALS = [10.0 + k for k in range(28)] + [80.0, 90.0]


def _thirty_image_world():
    world = build_release_world(n=30)
    for run, shift in ((world.candidate, 0.0), (world.baseline, 5.0)):
        rows = [{"device": "cpu", "total": t + shift, "model": t / 2} for t in TOTALS]
        summary = {**run.summary, "latency": latency_summary(rows, warmups=1)}
        EvalRun.objects.filter(pk=run.pk).update(summary=summary)
        run.refresh_from_db()
    return world


def _client(role: str) -> Client:
    client = Client()
    client.force_login(user_with(role, role))
    return client


def test_run_page_shows_n_30_and_max_not_p99():
    world = _thirty_image_world()
    page = _client("researcher").get(reverse("evals:detail", args=[world.candidate.pk]))
    html = page.content.decode()
    table = re.search(r'<table class="data latency-table".*?</table>', html, re.S).group(0)
    assert 'data-n="30"' in table and "n=30 images" in table
    assert ">max</th>" in table and ">p99</th>" not in table
    assert "90.0" in table  # the slowest image
    assert f"{np.percentile(TOTALS, 99):.1f}" not in table  # the fake p99 is not shown
    assert "not a p99" in html


def test_run_json_export_carries_n_and_the_tail_name():
    world = _thirty_image_world()
    doc = run_results_document(world.candidate)
    assert doc["latency"]["n"] == 30 and doc["latency"]["tail"] == "max"
    assert doc["latency"]["p99"] is None and doc["latency"]["max"] == 90.0
    total = doc["summary"]["latency"]["devices"]["cpu"]["stages"]["total"]
    assert total["p99"] is None and total["max"] == 90.0


def test_leaderboard_cell_shows_max_with_n():
    _thirty_image_world()
    leaderboard_refresh(force=True)
    row = LeaderboardRow.objects.get(version="1.1.0")
    assert (row.latency_n, row.latency_tail, row.latency_p99) == (30, "max", 90.0)
    html = _client("researcher").get(reverse("releases:leaderboard")).content.decode()
    assert "(max, n=30)" in html
    assert "p99 / max" in html


def test_release_report_latency_section_and_gate_name_the_max():
    world = _thirty_image_world()
    GateConfig.objects.create(family=world.candidate.model_version.family, latency_budget_ms=85)
    report = world_report(world, enqueue=False)
    payload = release_report_build(report_id=report.pk).payload
    cand = payload["latency"]["candidate"]
    assert (cand["n"], cand["tail"], cand["p99"], cand["max"]) == (30, "max", None, 90.0)
    assert cand["p50"] == pytest.approx(np.percentile(TOTALS, 50))
    gate = next(g for g in payload["gates"] if g["name"] == "latency budget")
    assert gate["status"] == "fail" and gate["value"] == 90.0
    assert "candidate max 90.0 ms (n=30; p99 needs 100)" in gate["text"]
    html = _client("release_manager").get(reverse("releases:report", args=[report.pk]))
    body = html.content.decode()
    section = re.search(r'<table class="data" id="latency">.*?</table>', body, re.S).group(0)
    assert '<td class="num">30</td>' in section and "max" in section and "p99" not in section


def test_release_report_csv_export_names_the_tail_and_n():
    world = _thirty_image_world()
    report = world_report(world, enqueue=False)
    release_report_build(report_id=report.pk)
    res = _client("release_manager").get(reverse("releases:report_csv", args=[report.pk]))
    lines = [ln for ln in res.content.decode().splitlines() if ln.startswith("latency,")]
    assert len(lines) == 2
    tail = next(ln for ln in lines if "tail ms" in ln)
    assert "tail ms (max)" in tail and ",90.0,95.0," in tail
    assert "n: candidate 30, baseline 30" in tail
