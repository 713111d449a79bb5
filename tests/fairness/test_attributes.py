"""Attribute annotation in the rating tool: tasks per item under leases with k annotators, blind
labelling page, aggregation (median tone, majority gender, agreement), QC, accepting the result as
an `annotated` attribute revision that fairness then uses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from evalsite.core.models import Job
from evalsite.fairness.services import FAIRNESS_JOB, fairness_report_compute, settings_for
from pipelines.fairness.annotation import aggregate_labels, annotator_label_qc
from ratings.models import Mode, Rating, Task
from ratings.services.assign import assignment_queue
from ratings.services.attributes import (
    attribute_campaign_accept,
    attribute_campaign_create,
    attribute_label_submit,
    attribute_queue,
    attribute_results,
)
from tests.evals.factories import user_with
from tests.fairness.builders import add_run, build_set

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_consensus_is_the_median_tone_and_majority_gender_with_agreement():
    out = aggregate_labels(
        ["a", "a", "a", "b", "b", "b", "c", "c", "c", "d", "d"],
        [
            "3",
            "4",
            "8",
            "not_applicable",
            "not_applicable",
            "5",
            "unknown",
            "unknown",
            "6",
            "9",
            "10",
        ],
        [
            "woman",
            "woman",
            "man",
            "not_applicable",
            "not_applicable",
            "woman",
            "man",
            "other",
            "woman",
            "man",
            "woman",
        ],
    )
    items = {i["item"]: i for i in out["items"]}
    assert (items["a"]["skin_tone"], items["a"]["perceived_gender"]) == ("4", "woman")
    assert items["a"]["tone_agreement"] == pytest.approx(2 / 3)  # 3 and 4 within a step of 4
    assert items["a"]["gender_agreement"] == pytest.approx(2 / 3)
    assert (items["b"]["skin_tone"], items["b"]["perceived_gender"]) == ("not_applicable",) * 2
    assert items["c"]["skin_tone"] == "unknown" and items["c"]["perceived_gender"] == "unknown"
    assert items["d"]["skin_tone"] == "9"  # lower middle value of an even count
    assert items["d"]["perceived_gender"] == "unknown"  # 1:1 is no majority


def test_krippendorff_alpha_of_perfect_and_of_split_labels():
    same = aggregate_labels(
        ["a", "a", "b", "b", "c", "c"],
        ["2", "2", "7", "7", "9", "9"],
        ["woman", "woman", "man", "man", "woman", "woman"],
    )
    assert same["tone_alpha"] == pytest.approx(1.0) and same["gender_alpha"] == pytest.approx(1.0)
    split = aggregate_labels(
        ["a", "a", "b", "b"], ["2", "9", "9", "2"], ["woman", "man", "man", "woman"]
    )
    assert split["tone_alpha"] < 0 and split["gender_alpha"] < 0


def test_label_qc_flags_an_annotator_who_disagrees_with_the_others():
    items, who, tones, genders = [], [], [], []
    for i in range(20):
        truth = str(i % 10 + 1)
        for name in ("ann1", "ann2", "ann3"):
            items.append(f"i{i}")
            who.append(name)
            tones.append(truth)
            genders.append("woman" if i % 2 else "man")
        items.append(f"i{i}")
        who.append("random")
        tones.append(str((i * 7 + 4) % 10 + 1) if i % 4 else truth)
        genders.append("other")
    qc = {q.annotator: q for q in annotator_label_qc(items, who, tones, genders, [3.0] * len(who))}
    assert qc["random"].flagged and qc["random"].consensus_scored == 20
    assert not qc["ann1"].flagged and qc["ann1"].consensus_accuracy == 1.0


def label_all(campaign: Any, annotators: list[Any], pick: Any) -> None:
    """Every annotator labels every task through the queue, as the page does."""
    for user in annotators:
        while True:
            queue = attribute_queue(user=user)
            if not queue.assignments:
                break
            a = queue.assignments[0]
            tone, gender = pick(user, a.task.item)
            attribute_label_submit(
                user=user, token=a.token, skin_tone=tone, perceived_gender=gender, seconds=2.5
            )


def test_k_annotators_label_each_item_and_the_accepted_revision_feeds_fairness(
    django_capture_on_commit_callbacks: Any,
) -> None:
    version, items = build_set(n=60, negatives=3, attributes=False)
    run = add_run(version, items, degrade=0.25)
    researcher = user_with("researcher", "res")
    annotators = [user_with("annotator", f"ann{i}") for i in range(3)]
    campaign = attribute_campaign_create(
        name="tones", dataset_version=version, overlap=2, open_now=True, user=researcher
    )
    assert campaign.mode == Mode.ATTRIBUTES and Task.objects.filter(campaign=campaign).count() == 63
    # A pairwise annotator's queue never hands out attribute tasks.
    assert assignment_queue(user=annotators[0]).assignments == []

    def pick(user: Any, item: Any) -> tuple[str, str]:
        index = int(item.stem.split("_")[1])
        if item.size_bucket == "none":
            return "not_applicable", "not_applicable"
        return str(index % 10 + 1), ("woman" if index % 2 else "man")

    label_all(campaign, annotators, pick)
    ratings = Rating.objects.filter(campaign=campaign)
    assert ratings.count() == 63 * 2  # k = 2 per item, no more
    assert all(ratings.filter(task=t).count() == 2 for t in Task.objects.filter(campaign=campaign))
    results = attribute_results(campaign=campaign)
    assert results.labelled == 63 and results.complete == 63
    assert results.mean_tone_agreement == 1.0 and results.tone_alpha == pytest.approx(1.0)

    with django_capture_on_commit_callbacks(execute=True):
        revision = attribute_campaign_accept(campaign=campaign, user=researcher)
    assert revision.source == "annotated" and revision.number == 1
    assert Job.objects.filter(kind=FAIRNESS_JOB).exists()  # reports of the set's runs recomputed
    report = fairness_report_compute(run=run, settings=settings_for(run=run, min_group_size=10))
    assert report.attribute_revision_id == revision.pk
    assert report.data["n"] == 60
    assert any(f["group"] == "8-10" and f["attribute"] == "skin_tone" for f in report.data["flags"])


def test_the_labelling_page_is_blind_and_keyboard_ready(client: Any):
    version, items = build_set(n=5, negatives=0, attributes=False)
    run = add_run(version, items)
    ann = user_with("annotator", "blind")
    attribute_campaign_create(name="blind", dataset_version=version, overlap=1, open_now=True)
    client.force_login(ann)
    assert client.post("/rate/attributes/start/").status_code == 303  # leasing is a POST
    page = client.get("/rate/attributes/").content.decode()
    assert "monk-10" in page and 'data-tone="10"' in page and "<kbd>0</kbd>" in page
    for secret in [
        "img_000",
        "subject-lift",
        "fx/photo",
        str(run.model_version.version),
        "iou",
        "mask",
    ]:
        assert secret not in page, secret
    state = json.loads(page.split('id="attr-state" type="application/json">')[1].split("<")[0])
    token = state["current"]["token"]
    image = client.get(state["current"]["photo"])
    assert image.status_code == 200 and "filename" not in image.get("Content-Disposition", "")
    bad = client.post(
        "/rate/attributes/api/submit",
        json.dumps({"token": token, "skin_tone": "11", "perceived_gender": "woman"}),
        content_type="application/json",
    )
    assert bad.status_code == 400 and "Monk swatch" in bad.json()["error"]["message"]
    ok = client.post(
        "/rate/attributes/api/submit",
        json.dumps({"token": token, "skin_tone": "7", "perceived_gender": "man", "seconds": 1.2}),
        content_type="application/json",
    )
    assert ok.status_code == 200 and ok.json()["progress"]["done"] == 1
    assert Rating.objects.get().skin_tone == "7"


def test_researcher_pages_create_show_and_accept(client: Any):
    version, _items = build_set(n=4, negatives=0, attributes=False)
    researcher = user_with("researcher", "res2")
    client.force_login(researcher)
    created = client.post(
        "/rate/attributes/campaigns/new/",
        {
            "name": "pp",
            "dataset_version": version.pk,
            "overlap": 1,
            "instructions": "",
            "open_now": "on",
        },
    )
    assert created.status_code == 302
    pk = int(created["Location"].rstrip("/").split("/")[-1])
    ann = user_with("annotator", "solo")
    campaign = Task.objects.filter(campaign_id=pk).first().campaign
    label_all(campaign, [ann], lambda user, item: ("3", "woman"))
    listing = client.get("/rate/campaigns/").content.decode()
    assert f"/rate/attributes/campaigns/{pk}/" in listing  # not the pairwise report page
    page = client.get(f"/rate/attributes/campaigns/{pk}/").content.decode()
    assert "Monk 3" in page and 'id="attr-qc"' in page
    client.force_login(researcher)
    accepted = client.post(f"/rate/attributes/campaigns/{pk}/accept/")
    assert accepted.status_code == 302
    assert version.attribute_revisions.get().source == "annotated"
    assert client.get(f"/rate/attributes/campaigns/{pk}/").status_code == 200
