"""Rows a bench needs, straight into the database (Django set up by the caller): a held-out set
whose items have no files (benches measure queries, not images) and finished runs of a family.
"""

from __future__ import annotations

from typing import Any


def fake_set(name: str, n_items: int, *, batch_size: int = 5000) -> Any:
    """A `DatasetVersion` of `n_items` items with placeholder file names and digests."""
    from evalsite.datasets.models import Dataset, DatasetVersion, Item

    dataset = Dataset.objects.create(name=name)
    version = DatasetVersion.objects.create(
        dataset=dataset, content_hash="0" * 64, item_count=n_items
    )
    Item.objects.bulk_create(
        (
            Item(
                version=version,
                stem=f"item{i:06d}",
                image="x.png",
                image_sha256="0" * 64,
                mask="m.png",
                mask_sha256="0" * 64,
                web="w.jpg",
                web_overlay="o.jpg",
                thumb="t.jpg",
                thumb_overlay="to.jpg",
                width=64,
                height=64,
                fg_fraction=0.2,
                size_bucket="medium",
            )
            for i in range(n_items)
        ),
        batch_size=batch_size,
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
