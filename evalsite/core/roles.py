"""Roles (Django groups) and what each may do — docs/contracts/platform.md.

"admin" is a superuser. Capabilities nest: a release manager can do what a researcher can; an
annotator can only rate. Views use the decorators; DRF views use the permission classes; the
navigation uses `nav_context`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, PermissionsMixin, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

ANNOTATOR = "annotator"
RESEARCHER = "researcher"
RELEASE_MANAGER = "release_manager"
ROLES = (ANNOTATOR, RESEARCHER, RELEASE_MANAGER)

#: Whoever a request is from (`request.user`), or nobody (a request without the auth middleware).
Someone = AbstractBaseUser | AnonymousUser | None


class AuthenticatedHttpRequest(HttpRequest):
    """For type checking: a request behind a role decorator, whose `user` is a signed-in User
    (services take `user: User`, not the `User | AnonymousUser` of a plain request)."""

    user: User


def signed_in(user: object) -> User:
    """The request's user as a `User`, for services (PermissionDenied for anyone else: views
    behind `IsAuthenticated` or a role decorator never see that)."""
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    return user


def ensure_role_groups() -> None:
    """Create the role groups if missing (the data migration does this; a flushed DB loses them)."""
    from django.contrib.auth.models import Group

    for name in ROLES:
        Group.objects.get_or_create(name=name)


def _groups(user: Someone) -> set[str]:
    if not isinstance(user, PermissionsMixin) or not user.is_authenticated:
        return set()
    cached: set[str] | None = getattr(user, "_role_cache", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._role_cache = cached  # type: ignore[attr-defined]  # per request's user object
    return cached


def is_admin(user: Someone) -> bool:
    return isinstance(user, PermissionsMixin) and user.is_authenticated and user.is_superuser


def can_release(user: Someone) -> bool:
    """Move `production`, record release decisions."""
    return is_admin(user) or RELEASE_MANAGER in _groups(user)


def can_research(user: Someone) -> bool:
    """See sets/models/runs/results; import sets, upload models, start runs, create campaigns."""
    return can_release(user) or RESEARCHER in _groups(user)


def can_rate(user: Someone) -> bool:
    return ANNOTATOR in _groups(user)


def role_names(user: Someone) -> list[str]:
    names = sorted(_groups(user) & set(ROLES))
    if is_admin(user):
        names.append("admin")
    return names


def _require(
    check: Callable[[Someone], bool],
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not check(request.user):
                raise PermissionDenied("Your role does not allow this page.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


researcher_required = _require(can_research)
manager_required = _require(can_release)
admin_required = _require(is_admin)
annotator_required = _require(can_rate)


class CanResearch(BasePermission):
    """The role, then (for a token) the scope the view declares for this method."""

    message = "This API needs the researcher, release_manager or admin role."

    def has_permission(self, request: Request, view: APIView) -> bool:
        from evalsite.core.scopes import check_token_scope

        return can_research(request.user) and check_token_scope(request, view)


class CanRelease(BasePermission):
    message = "Only release managers and admins may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        from evalsite.core.scopes import check_token_scope

        return can_release(request.user) and check_token_scope(request, view)


def nav_context(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    return {
        "nav": {
            "research": can_research(user),
            "release": can_release(user),
            "rate": can_rate(user),
            "admin": is_admin(user),
            "roles": role_names(user),
        }
    }
