"""Rows a bench needs, straight into the database (Django set up by the caller): a held-out set
whose items have no files (benches measure queries, not images), finished runs of a family, the
people of a campaign page and an open pairwise campaign over runs.
"""

from __future__ import annotations

from typing import Any


def placeholder_item(version: Any, stem: str, **fields: Any) -> Any:
    """An unsaved `Item` of `version` whose files and digests are placeholders (`fields` set
    any of them): for rows that pages and queries read, never their pictures."""
    from evalsite.datasets.models import Item

    placeholders: dict[str, Any] = {
        "image": "x.png", "image_sha256": "0" * 64, "mask": "m.png", "mask_sha256": "0" * 64,
        "web": "w.jpg", "web_overlay": "o.jpg", "thumb": "t.jpg", "thumb_overlay": "to.jpg",
        "width": 64, "height": 64, "fg_fraction": 0.2, "size_bucket": "medium",
    }  # fmt: skip
    return Item(version=version, stem=stem, **{**placeholders, **fields})


def fake_set(name: str, n_items: int, *, batch_size: int = 5000) -> Any:
    """A `DatasetVersion` of `n_items` items with placeholder file names and digests."""
    from evalsite.datasets.models import Dataset, DatasetVersion, Item

    dataset = Dataset.objects.create(name=name)
    version = DatasetVersion.objects.create(
        dataset=dataset, content_hash="0" * 64, item_count=n_items
    )
    Item.objects.bulk_create(
        (placeholder_item(version, f"item{i:06d}") for i in range(n_items)), batch_size=batch_size
    )
    return version


def finished_runs(version: Any, family: str, n_runs: int) -> list[Any]:
    """One ready builtin model version per run (1.0.0, 2.0.0, …) and its finished run."""
    from evalsite.evals.models import EvalRun, RunStatus
    from models.models import ModelFamily, ModelVersion, VersionStatus

    fam = ModelFamily.objects.create(name=family)
    runs = []
    for i in range(n_runs):
        mv = ModelVersion.objects.create(
            family=fam,
            version=f"{i + 1}.0.0",
            format="builtin",
            spec={},
            status=VersionStatus.READY,
            sha256=f"bench-{family}-{i}",
        )
        runs.append(
            EvalRun.objects.create(
                model_version=mv,
                dataset_version=version,
                queue="default",
                config_hash=f"{family}-{i}",
                status=RunStatus.DONE,
            )
        )
    return runs


def researcher_and_raters(n_raters: int) -> tuple[Any, list[int]]:
    """A researcher ("bench-researcher") and `n_raters` users ann000, ann001, …: (researcher,
    the raters' ids)."""
    from django.contrib.auth.models import Group, User

    from evalsite.core.roles import RESEARCHER, ensure_role_groups

    ensure_role_groups()
    researcher = User.objects.create_user("bench-researcher")
    researcher.groups.add(*Group.objects.filter(name=RESEARCHER))
    User.objects.bulk_create(User(username=f"ann{i:03d}") for i in range(n_raters))
    raters = User.objects.filter(username__startswith="ann").order_by("pk")
    return researcher, list(raters.values_list("pk", flat=True))


def open_campaign(name: str, version: Any, runs: list[Any], **fields: Any) -> Any:
    """An open campaign comparing `runs` on `version`, the first run its reference."""
    from ratings.models import Campaign, CampaignStatus

    campaign = Campaign.objects.create(
        name=name, dataset_version=version, status=CampaignStatus.OPEN, reference_run=runs[0],
        **fields,
    )  # fmt: skip
    campaign.runs.set(runs)
    return campaign
