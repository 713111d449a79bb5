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
from tests.evals.factories import done_run_row, tiny_set
from tests.media import media_root
from tests.ratings.builders import World, build_world, fabricate_results

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture(autouse=True)
def media(tmp_path: Path, settings: Any) -> Path:
    return media_root(tmp_path, settings)


def gates_text(payload: dict) -> str:
    return next(g["text"] for g in payload["gates"] if g["name"] == "crowd win rate")


def _people_set(tmp_path: Path, world: World, name: str) -> None:
    """A set with synthetic person attributes (groups of 27-45, above the gates' minimum of 20)
    and a run of each of the world's versions on it."""
    from evalsite.datasets.models import AttributeRevision, ItemAttribute

    version = tiny_set(tmp_path / "people", name=name, n=90, empty=0)
    revision = AttributeRevision.objects.create(version=version, number=1, source="synthetic")
    ItemAttribute.objects.bulk_create([
        ItemAttribute(revision=revision, item=item, skin_tone=str(1 + k % 10),
                      perceived_gender="woman" if k % 2 else "man", source="synthetic")
        for k, item in enumerate(version.items.order_by("stem"))
    ])  # fmt: skip
    for kind, run in enumerate(world.runs):
        people_run = done_run_row(run.model_version, version, f"people{kind:02d}deadbeef")
        fabricate_results(people_run, kind)


def test_demo_report_on_the_test_set_counts_the_campaign_and_labels_simulated_votes(
    tmp_path: Path,
) -> None:
    from evalsite.releases import demo as release_demo
    from ratings import demo as rating_demo

    world = build_world(tmp_path, n=40, name=release_demo.TEST_SET)
    _people_set(tmp_path, world, release_demo.PEOPLE_SET)
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
    control = campaign.tasks.filter(stratum="control").count()
    assert crowd["votes"] == crowd["simulated_votes"] == control * scripted
    # The gate reads the anytime-valid sequence, in the words the campaign page uses.
    assert crowd["sequential"]["decision"] is not None
    assert "certain at α" in gates_text(report.payload)
    gates = {g["name"]: g for g in report.payload["gates"]}
    assert gates["crowd win rate"]["status"] != "insufficient"
    assert "simulated" in gates["crowd win rate"]["text"]
    assert gates["minimum votes"]["status"] == "pass"
    # The suite gives every gate its evidence: nothing is left "insufficient".
    assert [g["name"] for g in report.payload["gates"] if g["status"] == "insufficient"] == []
    assert {g["name"] for g in report.payload["gates"] if g["kind"] == "fairness"} >= {
        "fairness: skin tone",
        "fairness: perceived gender",
    }

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
