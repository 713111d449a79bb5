"""Write services of the core app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from evalsite.core.roles import ROLES, ensure_role_groups


def user_ensure(*, username: str, password: str, roles: list[str], superuser: bool = False) -> Any:
    """Create or update a user with exactly these roles (idempotent; used by the demo)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}; known roles: {list(ROLES)}")
    user_model = get_user_model()
    ensure_role_groups()
    with transaction.atomic():
        user, _ = user_model.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_superuser = superuser
        user.is_staff = superuser
        user.save()
        user.groups.set(Group.objects.filter(name__in=roles))
    return user


def demo_users_load(path: Path) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = json.loads(path.read_text())
    for spec in users:
        user_ensure(
            username=spec["username"],
            password=spec["password"],
            roles=spec.get("roles", []),
            superuser=spec.get("superuser", False),
        )
    return users
