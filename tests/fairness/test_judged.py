"""Judged vs not judged: a report where no group reached the minimum size says "nothing could be
judged" (neutral), never "No flags"; "No flags" counts the groups judged; intervals are drawn."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from evalsite.fairness.services import fairness_report_compute
from evalsite.releases.models import GateConfig
from evalsite.releases.services.reports import release_report_build, release_report_create
from tests.evals.comparisons import stored_comparison
from tests.evals.factories import user_with
from tests.fairness.builders import add_run, build_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def _flags_paragraph(page: str) -> str:
    return re.search(r'<p id="fairness-flags"[^>]*>.*?</p>', page, re.S).group(0)


def test_all_groups_too_small_says_nothing_could_be_judged_and_never_no_flags(client: Any):
    # Given 40 person images: every tone, gender and intersection group is under 30
    world = build_world(degrade=0.0, n=40)
    report = fairness_report_compute(run=world.runs[0])
    assert all(g["too_small"] for g in report.data["groups"])
    assert report.data["judged_groups"] == 0  # the JSON says so too
    client.force_login(world.researcher)
    page = client.get(f"/fairness/runs/{world.runs[0].pk}/").content.decode()
    flags = _flags_paragraph(page)
    assert "Nothing could be judged" in flags and "minimum size of 30" in flags
    assert "(the largest has 20)" in flags
    assert "not-judged" in flags and "ok-text" not in flags  # neutral, not green
    assert "No flags" not in page
    # the heading no longer promises intervals that cannot exist
    assert "Group means with 95 % intervals" not in page and 'id="no-intervals"' in page


def test_cli_says_nothing_could_be_judged_instead_of_no_flags():
    world = build_world(degrade=0.0, n=40)
    out = StringIO()
    call_command("fairness_report", "--run", str(world.runs[0].pk), stdout=out)
    text = out.getvalue()
    assert "nothing could be judged: no group reached the minimum size of 30" in text
    assert "no flags" not in text.lower()


def test_no_flags_counts_the_groups_judged_and_the_table_draws_gap_intervals(client: Any):
    world = build_world(degrade=0.0, n=300)
    report = fairness_report_compute(run=world.runs[0])
    judged = sum(1 for g in report.data["groups"] if not g["too_small"])
    assert judged > 0 and not report.data["flags"] and report.data["judged_groups"] == judged
    client.force_login(world.researcher)
    page = client.get(f"/fairness/runs/{world.runs[0].pk}/").content.decode()
    flags = _flags_paragraph(page)
    assert f"No flags among the {judged} groups judged" in flags and "ok-text" in flags
    assert "Group means with 95 % intervals" in page
    table = re.search(r'<table class="data" id="fairness-table">.*?</table>', page, re.S).group(0)
    # every judged group's IoU gap carries its interval, as stored
    iou = next(g for g in report.data["groups"] if not g["too_small"])["metrics"]["iou"]
    assert f'gap {iou["gap"]:.3f} <span class="ci">[{iou["gap_ci"][0]:.3f}, ' in table
    out = StringIO()
    call_command("fairness_report", "--run", str(world.runs[0].pk), stdout=out)
    assert f"no flags among the {judged} groups judged" in out.getvalue()


def test_compare_page_with_all_groups_too_small_says_nothing_could_be_judged(
    client: Any, django_capture_on_commit_callbacks: Any
):
    world = build_world(degrade=0.0, n=40)
    other = add_run(world.version, world.items, model="2.0.0", degrade=0.1)
    stored_comparison(world.runs[0], other, django_capture_on_commit_callbacks)
    client.force_login(world.researcher)
    page = client.get(f"/fairness/compare/?a={world.runs[0].pk}&b={other.pk}").content.decode()
    assert "Nothing could be judged" in page and "No flags" not in page


def test_release_report_fairness_section_says_nothing_could_be_judged(client: Any):
    world = build_world(degrade=0.0, n=40)
    base = world.runs[0]
    cand = add_run(world.version, world.items, model="2.0.0", degrade=0.0, seed=3)
    # the gates' minimum group size (20 by default) raised above every group (at most 20)
    GateConfig.objects.create(family=cand.model_version.family, min_group_size=30)
    report = release_report_create(candidate=cand.model_version, baseline=base.model_version,
                                   dataset_versions=[world.version], enqueue=False)  # fmt: skip
    payload = release_report_build(report_id=report.pk).payload
    assert payload["fairness"]["judged_groups"] == {"skin_tone": 0, "perceived_gender": 0,
                                                    "skin_tone_x_perceived_gender": 0}  # fmt: skip
    client.force_login(user_with("release_manager", "mgr"))
    page = client.get(f"/releases/reports/{report.pk}/").content.decode()
    assert page.count("Nothing could be judged") == 3 and "No flags" not in page
