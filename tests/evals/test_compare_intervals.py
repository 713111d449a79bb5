"""Compare page: paired intervals stored by the `evals.compare` job (queued by the page's button
and when a run finishes against production), from the release report's own bootstrap draw."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from evalsite.core import jobs
from evalsite.core.models import Chunk, Job
from evalsite.evals.models import EvalRun, ItemResult, RunComparison
from evalsite.evals.services.comparisons import (
    COMPARE_JOB,
    ComparisonRefused,
    run_comparison_after_run_done,
    run_comparison_request,
)
from evalsite.releases.services.reports import release_report_build
from pipelines.stats.latency import latency_summary
from tests.evals.comparisons import run_compare_jobs
from tests.evals.factories import user_with
from tests.releases.builders import build_release_world, world_report

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def _world(n: int = 30) -> Any:
    world = build_release_world(n=n)
    for k, run in enumerate((world.baseline, world.candidate)):
        # finished runs carry an output digest (aggregate.eval_run_finalise sets it)
        EvalRun.objects.filter(pk=run.pk).update(output_digest=f"{k + 1:064d}")
        run.refresh_from_db()
    return world


def _client() -> Client:
    client = Client()
    client.force_login(user_with("researcher", "res"))
    return client


def _page(client: Client, a: EvalRun, b: EvalRun) -> str:
    res = client.get(reverse("evals:compare"), {"a": a.pk, "b": b.pk})
    assert res.status_code == 200
    return res.content.decode()


def test_button_queues_the_job_page_shows_computing_then_the_stored_intervals(
    django_capture_on_commit_callbacks: Any,
):
    world = _world()
    a, b = world.baseline, world.candidate
    client = _client()
    # Given nothing stored: the page offers the button and computes nothing on GET
    first = _page(client, a, b)
    assert 'id="compute-intervals"' in first and 'id="intervals-table"' not in first
    assert not RunComparison.objects.exists() and not Job.objects.filter(kind=COMPARE_JOB).exists()
    # When the researcher presses it (twice): one row, one job
    for _ in range(2):
        res = client.post(reverse("evals:compare_intervals"), {"a": a.pk, "b": b.pk})
        assert res.status_code == 302 and f"a={a.pk}" in res["Location"]
    assert RunComparison.objects.count() == 1 and Job.objects.filter(kind=COMPARE_JOB).count() == 1
    assert "computing…" in _page(client, a, b)
    # Then the worker stores the intervals and the page reads them
    assert run_compare_jobs(django_capture_on_commit_callbacks) == 1
    row = RunComparison.objects.get()
    assert row.status == "done" and row.payload["n"] == 30
    page = _page(client, a, b)
    table = re.search(r'<table class="data" id="intervals-table".*?</table>', page, re.S).group(0)
    iou = row.payload["metrics"]["iou"]
    assert f'<tr data-metric="iou" data-excludes-zero="{str(iou["excludes_zero"]).lower()}">' in (
        table
    )
    assert f"[{iou['ci'][0]:.4f}, {iou['ci'][1]:.4f}]" in table
    assert "n = 30 images both runs scored" in page
    # the candidate gains +0.05 IoU on every image: its interval excludes 0, on the better side
    assert iou["ci"][0] > 0 and iou["excludes_zero"] and "yes — B better" in table


def test_intervals_are_the_release_reports_from_the_same_draw(django_capture_on_commit_callbacks):
    world = _world()
    run_comparison_request(baseline=world.baseline, candidate=world.candidate)
    run_compare_jobs(django_capture_on_commit_callbacks)
    stored = RunComparison.objects.get().payload["metrics"]
    report = world_report(world, enqueue=False)
    payload = release_report_build(report_id=report.pk).payload
    assert set(stored) == set(payload["metrics"])
    for name, m in payload["metrics"].items():
        assert stored[name]["ci"] == m["ci"] and stored[name]["delta"] == m["delta"]
        assert stored[name]["n"] == m["n"] == 30
        assert stored[name]["excludes_zero"] == (m["ci"][0] > 0 or m["ci"][1] < 0)


def test_a_finished_run_queues_its_comparison_with_productions_primary_run():
    world = _world()
    run_comparison_after_run_done(run=world.candidate)  # production = 1.0.0 = world.baseline
    row = RunComparison.objects.get()
    assert (row.baseline_id, row.candidate_id) == (world.baseline.pk, world.candidate.pk)
    assert row.status == "queued" and row.job is not None
    # production's own run is compared with nothing (it is the baseline)
    run_comparison_after_run_done(run=world.baseline)
    assert RunComparison.objects.count() == 1


def test_refusals_say_why():
    world = _world()
    with pytest.raises(ComparisonRefused, match="two different runs"):
        run_comparison_request(baseline=world.baseline, candidate=world.baseline)
    EvalRun.objects.filter(pk=world.candidate.pk).update(status="running")
    world.candidate.refresh_from_db()
    with pytest.raises(ComparisonRefused, match="intervals need two finished runs"):
        run_comparison_request(baseline=world.baseline, candidate=world.candidate)


def test_a_failed_comparison_can_be_queued_again(django_capture_on_commit_callbacks):
    world = _world()
    row = run_comparison_request(baseline=world.baseline, candidate=world.candidate)
    ItemResult.objects.filter(run=world.candidate).update(status="failed")  # nothing to pair
    chunk = Chunk.objects.get(job__kind=COMPARE_JOB)
    claimed = jobs.chunk_claim(chunk_id=chunk.pk, worker="inline")
    with pytest.raises(ValueError, match="share no successfully scored item"):
        jobs.job_kind(COMPARE_JOB).run_chunk(claimed)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.chunk_fail(claimed, "share no successfully scored item", retry=False)
    row.refresh_from_db()
    assert row.status == "failed" and "share no successfully scored item" in row.error
    page = _page(_client(), world.baseline, world.candidate)
    assert "Computing the intervals failed" in page and 'id="compute-intervals"' in page
    again = run_comparison_request(baseline=world.baseline, candidate=world.candidate)
    assert again.pk == row.pk and again.status == "queued"
    assert Job.objects.filter(kind=COMPARE_JOB).count() == 2


def test_compare_page_latency_shows_n_30_and_max():
    world = _world()
    totals = [10.0 + k for k in range(28)] + [80.0, 90.0]
    for run in (world.baseline, world.candidate):
        rows = [{"device": "cpu", "total": t} for t in totals]
        EvalRun.objects.filter(pk=run.pk).update(
            summary={**run.summary, "latency": latency_summary(rows, warmups=0)}
        )
    page = _page(_client(), world.baseline, world.candidate)
    table = re.search(r'<table class="data" id="compare-latency".*?</table>', page, re.S).group(0)
    assert table.count('data-n="30" data-tail="max"') == 2
    assert "90.0" in table and f"{np.percentile(totals, 99):.1f}" not in table


def test_fairness_compare_page_reads_the_stored_comparison(django_capture_on_commit_callbacks):
    world = _world(n=60)
    a, b = world.baseline, world.candidate
    client = _client()
    url = f"{reverse('fairness:compare')}?a={a.pk}&b={b.pk}"
    assert 'id="compute-intervals"' in client.get(url).content.decode()
    res = client.post(
        reverse("evals:compare_intervals"), {"a": a.pk, "b": b.pk, "next": "fairness"}
    )
    assert res.status_code == 302 and res["Location"].startswith(reverse("fairness:compare"))
    assert "computing…" in client.get(url).content.decode()
    run_compare_jobs(django_capture_on_commit_callbacks)
    page = client.get(url)
    stored = RunComparison.objects.get().payload["fairness"]
    assert page.context["paired"].to_dict() == stored and stored["n"] == 60
    assert stored["version"] == 1 and (stored["baseline"], stored["candidate"]) == (a.pk, b.pk)
    assert 'id="fairness-paired"' in page.content.decode()


@pytest.mark.parametrize(
    ("method", "url", "usage"),
    [
        ("get", "fairness:compare", "Give two run ids: /fairness/compare/?a=<id>&b=<id>"),
        ("post", "evals:compare_intervals", "Give two run ids (a, b) to compute intervals for"),
    ],
)
def test_both_compare_doors_answer_400_naming_the_bad_run_id(method: str, url: str, usage: str):
    res = getattr(_client(), method)(reverse(url), {"a": "x1", "b": "2"})

    assert res.status_code == 400 and res["Content-Type"].startswith("text/plain")
    text = res.content.decode()
    assert text.startswith(f"{usage} (") and "'x1'" in text, text
