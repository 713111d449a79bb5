"""Read-only queries of the registry; the query shape (select/prefetch) is chosen here."""

from __future__ import annotations

from django.db.models import Count, Model, Prefetch, QuerySet

from evalsite.core.models import Job
from evalsite.core.providers import RUNS_OF_MODEL_VERSION, provider
from models.errors import VersionNotFound
from models.models import Alias, AliasMove, ModelFamily, ModelVersion, VersionStatus
from models.services.conversions import CONVERT_JOB

HISTORY_ROWS = 50  # alias moves shown on a family page; older ones stay in the database


def family_rows() -> QuerySet[ModelFamily]:
    return ModelFamily.objects.annotate(
        n_versions=Count("versions", distinct=True)
    ).prefetch_related(Prefetch("aliases", queryset=Alias.objects.select_related("version")))


def family_get(name: str) -> ModelFamily:
    """The family called `name`, or VersionNotFound."""
    family = ModelFamily.objects.filter(name=name).first()
    if family is None:
        raise VersionNotFound(f"No model family {name!r}.")
    return family


def family_versions(family: ModelFamily) -> QuerySet[ModelVersion]:
    return (
        family.versions.select_related("parent", "created_by", "family")
        .prefetch_related("aliases")
        .order_by("-created_at", "-pk")
    )


def family_aliases(family: ModelFamily) -> QuerySet[Alias]:
    return family.aliases.select_related("version", "updated_by", "family")


def alias_history(family: ModelFamily) -> QuerySet[AliasMove]:
    return AliasMove.objects.filter(alias__family=family).select_related(
        "alias", "from_version", "to_version", "moved_by"
    )[:HISTORY_ROWS]


def _version_page_rows() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related(
        "family", "parent", "created_by", "validation_job"
    ).prefetch_related("children", "aliases")


def model_version_get(*, family: str, version: str) -> ModelVersion:
    """The version `family:version` with what its page shows, or VersionNotFound. (Not to be
    confused with `evalsite.datasets.selectors.version_get`, a held-out set's version.)"""
    row = _version_page_rows().filter(family__name=family, version=version).first()
    if row is None:
        raise VersionNotFound(f"No model version {family}:{version}.")
    return row


def model_version_by_id(pk: int) -> ModelVersion:
    """The version with this id (what the API's version document shows), or VersionNotFound."""
    row = _version_page_rows().filter(pk=pk).first()
    if row is None:
        raise VersionNotFound(f"No model version with id {pk}.")
    return row


def family_version(family: ModelFamily, version: str) -> ModelVersion:
    """The family's version called `version`, or VersionNotFound."""
    row = family.versions.filter(version=version).first()
    if row is None:
        raise VersionNotFound(f"{family.name} has no version {version!r}.")
    return row


def family_alias(family: ModelFamily, name: str) -> Alias:
    """The family's alias called `name` with its version, or VersionNotFound."""
    alias = family.aliases.select_related("family", "version").filter(name=name).first()
    if alias is None:
        raise VersionNotFound(f"{family.name} has no alias {name!r}.")
    return alias


def version_lineage(version: ModelVersion) -> list[ModelVersion]:
    """Ancestors, oldest first (conversions are children of their source)."""
    chain: list[ModelVersion] = []
    node = version.parent
    while node is not None and len(chain) < 20:
        chain.append(node)
        node = node.parent
    return list(reversed(chain))


def conversion_jobs(version: ModelVersion) -> list[Job]:
    """Recent conversion jobs of a source version (a failed one explains a missing child)."""
    return list(Job.objects.filter(kind=CONVERT_JOB, payload__source_id=version.pk)[:10])


def version_runs(version: ModelVersion) -> list[Model]:
    """Runs of this version, from the provider the evals app registers (evalsite.core.providers;
    a missing one raises ProviderMissing rather than showing no runs)."""
    return list(provider(RUNS_OF_MODEL_VERSION)(version.pk))


def model_version_resolve(ref: str, *, require_ready: bool = False) -> ModelVersion:
    """`F:V` (version, starts with a digit) or `F:ALIAS` (starts with a letter) -> the version.

    Raises VersionNotFound with a message listing what the family has; with require_ready, also
    when the version is not validated (evaluations need a ready version).
    """
    family_name, sep, name = (ref or "").partition(":")
    if not sep or not family_name or not name:
        raise VersionNotFound(
            f"{ref!r} is not a model reference: use FAMILY:VERSION (subject-lift:1.1.0) or "
            "FAMILY:ALIAS (subject-lift:production)."
        )
    # Names are stored in canonical lower case (evalsite.core.names): `Subject-Lift:Production`
    # names the same version as `subject-lift:production`.
    family = ModelFamily.objects.filter(name=family_name.lower()).first()
    if family is None:
        known = ", ".join(ModelFamily.objects.values_list("name", flat=True)) or "none yet"
        raise VersionNotFound(f"No model family {family_name!r} (families: {known}).")
    if name[0].isdigit():
        row = family.versions.select_related("family").filter(version=name.lower()).first()
        if row is None:
            known = ", ".join(family.versions.values_list("version", flat=True)) or "none yet"
            raise VersionNotFound(f"{family_name} has no version {name!r} (versions: {known}).")
    else:
        alias = family.aliases.select_related("version__family").filter(name=name.lower()).first()
        if alias is None:
            known = ", ".join(family.aliases.values_list("name", flat=True)) or "none yet"
            raise VersionNotFound(f"{family_name} has no alias {name!r} (aliases: {known}).")
        row = alias.version
    if require_ready and row.status != VersionStatus.READY:
        why = f": {row.rejection_reason}" if row.rejection_reason else ""
        raise VersionNotFound(f"{row.ref} is {row.status}, not ready{why}")
    return row
