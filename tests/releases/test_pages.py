"""Gate settings page, images inlined in the offline export, and the demo step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from evalsite.releases.export import export_html
from evalsite.releases.models import GateConfig, ReleaseReport
from evalsite.releases.services.reports import release_report_build, release_report_create
from tests.evals.factories import user_with
from tests.releases.builders import build_release_world, world_report

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_release_managers_set_gates_per_family_and_researchers_cannot():
    world = build_release_world()
    family = world.candidate.model_version.family
    url = reverse("releases:gates")
    res = Client()
    res.force_login(user_with("researcher"))
    assert res.get(url).status_code == 403
    mgr = Client()
    mgr.force_login(user_with("release_manager", "mgr"))
    body = {
        "family": family.name,
        "metric_margins": '{"iou": 0.02, "mae": 0.005}',
        "improvement_margin": 0.01,
        "fairness_margin": 0.03,
        "min_group_size": 15,
        "latency_budget_ms": 35,
        "min_win_rate": "",
        "min_votes": 0,
        "alpha": 0.025,
    }
    assert mgr.post(url, body).status_code == 302
    config = GateConfig.objects.get(family=family)
    assert config.metric_margins == {"iou": 0.02, "mae": 0.005} and config.min_win_rate is None
    bad = mgr.post(url, {**body, "metric_margins": '{"nope": 1}'})
    assert bad.status_code == 400
    assert "metric_margins: unknown metric(s) nope" in bad.content.decode()
    report = world_report(world, enqueue=False)
    gates = {g["name"]: g for g in release_report_build(report_id=report.pk).payload["gates"]}
    assert gates["IoU non-inferiority"]["threshold"] == -0.02
    assert gates["latency budget"]["status"] == "pass"  # candidate p99 30 ms <= 35 ms
    assert "crowd win rate" not in gates and "minimum votes" not in gates


def test_offline_export_inlines_photos_ground_truth_and_cutouts(tmp_path: Path, settings: Any):
    from tests.ratings.builders import build_world

    settings.MEDIA_ROOT = tmp_path / "media"
    world = build_world(tmp_path, n=6, runs=2, annotators=0)
    report = release_report_create(candidate=world.runs[1].model_version,
                                   baseline=world.runs[0].model_version,
                                   dataset_versions=[world.version], enqueue=False)  # fmt: skip
    report = release_report_build(report_id=report.pk)
    assert report.payload["gallery"]["regressed"]  # run 1 misses the subject on even items
    html = export_html(report)
    assert html.count('src="data:image/png;base64,') >= 2 * len(
        report.payload["gallery"]["regressed"]
    )  # both cutouts of every regressed item
    assert 'src="data:image/jpeg;base64,' in html  # photo and ground-truth overlay thumbnails


def test_demo_step_builds_a_report_for_the_resolved_candidate(settings: Any):
    from evalsite.releases import demo

    world = build_release_world(loss=None)
    world.version.dataset.name = demo.DEMO_SET
    world.version.dataset.save()
    lines: list[str] = []
    demo.after_start(lines.append)
    report = ReleaseReport.objects.get()
    assert report.candidate == world.candidate.model_version  # the `candidate` alias, resolved
    assert report.baseline == world.baseline.model_version and report.status == "done"
    assert any(f"/releases/reports/{report.pk}/" in line for line in lines)
    # No test set in this world: the suite report waits.
    assert "pascal-s-test + synthetic-people: skipped" in lines[-1]
    demo.after_start(lines.append)  # idempotent: reused
    assert ReleaseReport.objects.count() == 1
    page = Client()
    page.force_login(user_with("researcher"))
    assert f"/releases/reports/{report.pk}/" in page.get("/").content.decode()
