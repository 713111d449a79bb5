"""API tokens (DRF authtoken) with scopes and an expiry: each user creates and revokes their own.

DRF's Token is one per user, so "create" replaces any previous key: a leaked key is revoked by
making a new one. The key is shown once, right after creation. A CI job gets its own user (a
researcher) whose key holds only the scopes the job needs (`evalsite.core.scopes.CI_SCOPES`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from evalsite.core.models import TokenPolicy
from evalsite.core.roles import can_research
from evalsite.core.scopes import parse_scopes, role_scopes

MAX_EXPIRY_DAYS = 3650


def token_expiry(days: int | None) -> datetime | None:
    """`days` from now (None or 0: never); ValueError outside 0..MAX_EXPIRY_DAYS."""
    if days is None or days == 0:
        return None
    if not 0 < days <= MAX_EXPIRY_DAYS:
        raise ValueError(f"expiry must be 1 to {MAX_EXPIRY_DAYS} days (0: never)")
    return timezone.now() + timedelta(days=days)


def api_token_create(
    *,
    user: User,
    scopes: list[str] | tuple[str, ...] | str | None = None,
    expires_at: datetime | None = None,
    name: str = "",
) -> Token:
    """A new key for `user` (replacing theirs) holding `scopes` (default: every scope of the
    user's role). A scope beyond the role is refused: a token never grants more than its user."""
    if not can_research(user):
        raise PermissionDenied("API tokens are for researchers, release managers and admins.")
    allowed = role_scopes(user)
    wanted = allowed if scopes is None else parse_scopes(scopes)
    beyond = [s for s in wanted if s not in allowed]
    if beyond:
        raise PermissionDenied(
            f"your role does not allow the {beyond[0]!r} scope; yours: {', '.join(allowed)}"
        )
    if not wanted:
        raise ValueError("choose at least one scope")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValueError("the expiry must be in the future")
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        token = Token.objects.create(user=user)
        TokenPolicy.objects.create(
            token=token, scopes=wanted, expires_at=expires_at, name=name.strip()[:100]
        )
    return token


def api_token_revoke(*, user: User) -> bool:
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)
