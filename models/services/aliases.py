"""Moving aliases, with the permission rule for `production` and an append-only history."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction

from evalsite.core.names import NameRejected, canonical_name, lookalike_check
from evalsite.core.roles import can_release, can_research
from evalsite.core.text import text_problem
from models.errors import RegistryError
from models.models import PRODUCTION, Alias, AliasMove, ModelFamily, ModelVersion


def alias_move(
    *,
    family: ModelFamily,
    name: str,
    version: ModelVersion,
    user: User | None,
    reason: str,
) -> Alias:
    """Point `family:name` at `version` and record who/when/from/to/why.

    `user=None` is the operator at the server's shell (CLI without --user), who may do anything.
    Raises PermissionDenied for a researcher moving `production` (release managers and admins
    only, platform contract) and RegistryError for a bad name, reason or version.
    """
    if user is not None and not can_research(user):
        raise PermissionDenied("Moving aliases needs the researcher role or above.")
    try:  # canonical first, so `Production` or `ｐroduction` meet the production rule below
        name = canonical_name(name, kind="alias")
        lookalike_check(name, kind="alias", existing=family.aliases.values_list("name", flat=True))
    except NameRejected as exc:
        raise RegistryError(str(exc)) from exc
    if name == PRODUCTION and user is not None and not can_release(user):
        raise PermissionDenied(
            "Only release managers and admins may move the production alias: it names the "
            "version users get. Ask a release manager, or move another alias (e.g. candidate)."
        )
    reason = (reason or "").strip()
    if not reason:
        raise RegistryError("Say why the alias moves (a reason is required and kept in history).")
    too_long = text_problem("reason", reason)
    if too_long:
        raise RegistryError(too_long)
    if version.family_id != family.pk:
        raise RegistryError(f"{version.ref} is not a version of family {family.name}.")
    if not version.is_ready:
        raise RegistryError(
            f"{version.ref} is {version.status}; only ready (validated) versions can get an alias."
        )
    with transaction.atomic():
        alias = Alias.objects.select_for_update().filter(family=family, name=name).first()
        previous = alias.version if alias else None
        if alias is None:
            alias = Alias.objects.create(family=family, name=name, version=version, updated_by=user)
        elif previous == version:
            return alias  # already there: no move, no history row
        else:
            alias.version = version
            alias.updated_by = user
            alias.save(update_fields=["version", "updated_by", "updated_at"])
        AliasMove.objects.create(
            alias=alias, from_version=previous, to_version=version, moved_by=user, reason=reason
        )
    return alias
