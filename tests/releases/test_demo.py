"""The release app's demo step over the demo campaign: the report on the test set reads the
campaign's simulated votes (labelled), judges the crowd gates, is reused on a second start and
rebuilt once a person has rated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from evalsite.releases.models import ReleaseReport
from models.models import CANDIDATE, Alias
from ratings.models import Campaign
from ratings.services.assign import assignment_queue, rating_submit
from tests.ratings.builders import build_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture(autouse=True)
def media(tmp_path: Path, settings: Any) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


def test_demo_report_on_the_test_set_counts_the_campaign_and_labels_simulated_votes(
    tmp_path: Path,
) -> None:
    from evalsite.releases import demo as release_demo
    from ratings import demo as rating_demo

    world = build_world(tmp_path, n=40, name=release_demo.TEST_SET)
    candidate = world.runs[1].model_version
    Alias.objects.create(family=candidate.family, name=CANDIDATE, version=candidate)
    lines: list[str] = []
    rating_demo.after_start(lines.append)
    release_demo.after_start(lines.append)
    campaign = Campaign.objects.get()
    report = ReleaseReport.objects.get()
    assert report.campaign_id == campaign.pk and report.candidate_id == candidate.pk
    assert report.baseline_id == world.runs[0].model_version_id  # production, resolved
    crowd = report.payload["crowd"]
    scripted = len(rating_demo.SCRIPTED_RATERS)
    # Clickers are flagged and left out; every remaining control vote is a scripted one.
    assert crowd["votes"] == crowd["simulated_votes"] == 20 * scripted
    gates = {g["name"]: g for g in report.payload["gates"]}
    assert gates["crowd win rate"]["status"] != "insufficient"
    assert "simulated" in gates["crowd win rate"]["text"]
    assert gates["minimum votes"]["status"] == "pass"

    client = Client()
    client.force_login(world.researcher)
    page = client.get(f"/releases/reports/{report.pk}/").content.decode()
    assert 'id="crowd-simulated"' in page and "simulated raters" in page

    release_demo.after_start(lines.append)  # nothing new: reused
    assert ReleaseReport.objects.count() == 1

    newcomer = world.annotators[0]
    counted = 0  # the newcomer's non-gold votes (gold tasks check raters, never score runs)
    while counted < 3:
        held = assignment_queue(user=newcomer, campaign=campaign).assignments
        assert held, "the newcomer ran out of tasks"
        for assignment in held:
            rating_submit(user=newcomer, token=assignment.token, choice="tie")
            counted += assignment.task.stratum != "gold"
    rating_demo.after_start(lines.append)
    release_demo.after_start(lines.append)
    newest = ReleaseReport.objects.order_by("-pk").first()
    assert newest is not None and newest.pk != report.pk
    assert newest.payload["crowd"]["all_votes"] == crowd["all_votes"] + counted
