"""Agreement on one label per item is "not measurable", never 1.00; with pairs it is the reference
Krippendorff alpha over the items that have two or more labels."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import Client

from pipelines.fairness.annotation import aggregate_labels
from pipelines.stats.agreement import ONE_LABEL_PER_ITEM
from pipelines.stats.campaign import TaskTable, agreement
from tests.pipelines.test_stats_agreement import brute_force_alpha

pytestmark = pytest.mark.no_services


def test_one_label_per_item_is_not_measurable():
    out = aggregate_labels(["a", "b", "c"], ["3", "7", "3"], ["woman", "man", "woman"])
    assert [i["tone_agreement"] for i in out["items"]] == [None, None, None]
    assert [i["gender_agreement"] for i in out["items"]] == [None, None, None]
    assert out["mean_tone_agreement"] is None and out["mean_gender_agreement"] is None
    assert out["tone_alpha"] is None and out["gender_alpha"] is None
    assert out["agreement_note"] == ONE_LABEL_PER_ITEM == "not measurable (one label per item)"
    # the consensus label of a single label is still that label
    assert [(i["skin_tone"], i["perceived_gender"]) for i in out["items"]] == [
        ("3", "woman"), ("7", "man"), ("3", "woman")]  # fmt: skip


def test_with_some_pairs_agreement_covers_only_items_with_two_labels_as_the_reference():
    items = ["a", "a", "b", "b", "c", "d", "e", "e"]
    tones = ["3", "5", "4", "4", "7", "2", "9", "8"]
    genders = ["woman", "man", "man", "man", "woman", "man", "woman", "woman"]
    out = aggregate_labels(items, tones, genders)
    by_item = {i["item"]: i for i in out["items"]}
    assert by_item["c"]["tone_agreement"] is None and by_item["d"]["gender_agreement"] is None
    # a: 3 and 5 vs median 3 -> 1 of 2 within a step; b: both; e: both (8, 9 around 8)
    assert out["mean_tone_agreement"] == pytest.approx(np.mean([0.5, 1.0, 1.0]))
    assert out["agreement_note"] is None
    nan = np.nan
    reliability = np.array([[3, 4, 7, 2, 9], [5, 4, nan, nan, 8]], dtype=float)
    assert out["tone_alpha"] == pytest.approx(brute_force_alpha(reliability, "interval"))
    gender_codes = np.array([[0, 1, 0, 1, 0], [1, 1, nan, nan, 0]], dtype=float)
    assert out["gender_alpha"] == pytest.approx(brute_force_alpha(gender_codes, "nominal"))


def _table(votes_per_task: list[list[int]]) -> TaskTable:
    task, value, count = [], [], []
    for t, votes in enumerate(votes_per_task):
        for v in votes:
            task.append(t)
            value.append(v)
            count.append(1)
    n = len(votes_per_task)
    return TaskTable.from_counts(
        task=list(range(n)), item=list(range(n)), run_a=[0] * n, run_b=[1] * n,
        stratum=["control"] * n, vote_task=task, vote_value=value, vote_count=count,
    )  # fmt: skip


def test_campaign_agreement_on_one_rating_per_task_is_not_measurable():
    single = agreement(_table([[0], [1], [0], [2]])).as_dict()
    assert single["alpha"] is None and single["kappa"] is None
    assert single["note"] == ONE_LABEL_PER_ITEM and single["units"] == 4
    paired = agreement(_table([[0, 0], [1, 0], [0, 0], [2, 2]])).as_dict()
    assert paired["note"] is None
    reference = np.array([[0, 1, 0, 2], [0, 0, 0, 2]], dtype=float)
    assert paired["alpha"] == pytest.approx(brute_force_alpha(reference, "nominal"))


@pytest.mark.django_db
def test_attribute_campaign_page_says_not_measurable_with_one_label_per_item():
    from django.urls import reverse

    from ratings.services.attributes import attribute_campaign_create
    from tests.evals.factories import user_with
    from tests.fairness.builders import build_set
    from tests.fairness.test_attributes import label_all

    version, _ = build_set(n=12, negatives=0, attributes=False)
    researcher = user_with("researcher", "res")
    campaign = attribute_campaign_create(
        name="one each", dataset_version=version, overlap=1, open_now=True, user=researcher
    )
    label_all(campaign, [user_with("annotator", "ann0")], lambda user, item: ("5", "woman"))
    client = Client()
    client.force_login(researcher)
    html = client.get(reverse("ratings:attr_campaign", args=[campaign.pk])).content.decode()
    summary = html[
        html.index('id="attr-summary"') : html.index("</table>", html.index('id="attr-summary"'))
    ]
    assert summary.count("not measurable (one label per item)") == 4
    assert "1.00" not in summary
