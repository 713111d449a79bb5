"""Resolve the references every door accepts (F:V|F:ALIAS, NAME[:HASH-PREFIX], campaign id)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evalsite.datasets.errors import VersionSpecError
from evalsite.datasets.models import DatasetVersion
from evalsite.datasets.selectors import dataset_version_resolve
from evalsite.releases.errors import ReleaseError
from models.errors import VersionNotFound
from models.models import PRODUCTION, ModelVersion
from models.selectors import model_version_resolve

if TYPE_CHECKING:  # a report's campaign is a foreign key; its data is read through ratings
    from ratings.models import Campaign


@dataclass(frozen=True)
class ReportRefs:
    candidate: ModelVersion
    baseline: ModelVersion
    dataset_version: DatasetVersion  # the first (quality) set of the suite
    campaign: Campaign | None
    dataset_versions: tuple[DatasetVersion, ...] = ()  # the whole suite, in order


def resolve_refs(
    *,
    candidate: str,
    baseline: str = "",
    dataset: str | Sequence[str],
    campaign: int | None = None,
) -> ReportRefs:
    """Turn the strings of the CLI/API/form into rows; ReleaseError says what is wrong.

    `baseline` defaults to the candidate family's `production` alias; `dataset` is one set
    version or a suite of them (the first is the quality set).
    """
    specs = [dataset] if isinstance(dataset, str) else list(dataset)
    specs = [x.strip() for x in specs if x and x.strip()]
    if not specs:
        raise ReleaseError("name at least one set version (NAME or NAME:HASH-PREFIX)")
    try:
        cand = model_version_resolve(candidate)
        base_ref = baseline or f"{cand.family.name}:{PRODUCTION}"
        base = model_version_resolve(base_ref)
    except VersionNotFound as exc:
        raise ReleaseError(str(exc)) from None
    suite = []
    for spec in specs:
        try:
            suite.append(dataset_version_resolve(spec))
        except VersionSpecError as exc:
            raise ReleaseError(str(exc)) from None
    camp = None
    if campaign is not None:
        from ratings.selectors import campaign_find

        camp = campaign_find(campaign)
        if camp is None:
            raise ReleaseError(f"no campaign {campaign}")
    return ReportRefs(cand, base, suite[0], camp, tuple(suite))
