"""API tokens (DRF authtoken): each user creates and revokes their own.

DRF's Token is one per user, so "create" replaces any previous key: a leaked key is revoked by
making a new one. The key is shown once, right after creation.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from rest_framework.authtoken.models import Token

from evalsite.core.roles import can_research


def api_token_create(*, user: User) -> Token:
    if not can_research(user):
        raise PermissionDenied("API tokens are for researchers, release managers and admins.")
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


def api_token_revoke(*, user: User) -> bool:
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)
