"""Resolve the references every door accepts (F:V|F:ALIAS, NAME[:HASH-PREFIX], campaign id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalsite.datasets.errors import VersionSpecError
from evalsite.datasets.models import DatasetVersion
from evalsite.datasets.selectors import dataset_version_resolve
from evalsite.releases.errors import ReleaseError
from models.errors import VersionNotFound
from models.models import PRODUCTION, ModelVersion
from models.selectors import model_version_resolve


@dataclass(frozen=True)
class ReportRefs:
    candidate: ModelVersion
    baseline: ModelVersion
    dataset_version: DatasetVersion
    campaign: Any


def resolve_refs(
    *, candidate: str, baseline: str = "", dataset: str, campaign: int | None = None
) -> ReportRefs:
    """Turn the strings of the CLI/API/form into rows; ReleaseError says what is wrong.

    `baseline` defaults to the candidate family's `production` alias.
    """
    try:
        cand = model_version_resolve(candidate)
        base_ref = baseline or f"{cand.family.name}:{PRODUCTION}"
        base = model_version_resolve(base_ref)
    except VersionNotFound as exc:
        raise ReleaseError(str(exc)) from None
    try:
        dv = dataset_version_resolve(dataset)
    except VersionSpecError as exc:
        raise ReleaseError(str(exc)) from None
    camp = None
    if campaign is not None:
        from ratings.models import Campaign

        camp = Campaign.objects.filter(pk=campaign).first()
        if camp is None:
            raise ReleaseError(f"no campaign {campaign}")
    return ReportRefs(cand, base, dv, camp)
