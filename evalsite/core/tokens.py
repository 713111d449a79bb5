"""Token authentication with scopes, expiry and a record of each use.

Wraps the throttled token check (`throttle.GuardedTokenAuthentication`): a wrong key counts as a
failed attempt there; an expired key is a 401 naming its expiry (not counted: the key is real).
The last use (time, client address) is written at most once a minute per key and address, so a
polling CI job does not write on every request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.request import Request

from evalsite.core.answers import json_error
from evalsite.core.clientaddr import client_address
from evalsite.core.models import TokenPolicy
from evalsite.core.throttle import GuardedTokenAuthentication

USE_RECORD_EVERY = timedelta(seconds=60)


class ScopedTokenAuthentication(GuardedTokenAuthentication):
    def authenticate(self, request: Request) -> Any:
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        policy = TokenPolicy.objects.filter(token=token).first()
        now = timezone.now()
        if policy is not None and policy.expires_at is not None and policy.expires_at <= now:
            raise exceptions.AuthenticationFailed(
                f"This API token expired at {policy.expires_at.isoformat(timespec='seconds')}; "
                "create a new one on the API tokens page or with `manage.py api_token`."
            )
        address = client_address(request._request)[:64]
        if policy is not None:
            TokenPolicy.objects.filter(pk=policy.pk).filter(
                Q(last_used_at__isnull=True)
                | Q(last_used_at__lt=now - USE_RECORD_EVERY)
                | ~Q(last_used_from=address)
            ).update(last_used_at=now, last_used_from=address)
        request._request.token_policy = policy  # type: ignore[attr-defined]
        request.token_policy = policy  # type: ignore[attr-defined]
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return "Token"


class TokensOnlyForTheApiMiddleware:
    """A request carrying an API token to a web page (a non-DRF view: campaign creation, the
    decide form, alias moves on the page) is refused with 403 and the reason, rather than sent
    to the login page: tokens and their scopes exist for the REST API only."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith("token "):
            return None
        # Imported here: rest_framework.views loads the authentication classes of this module.
        from rest_framework.views import APIView

        cls = getattr(view_func, "cls", None)
        if cls is not None and issubclass(cls, APIView):
            return None
        return json_error(
            403,
            "API tokens work only on the REST API (see /api/docs/); this is a web page: sign in "
            "with a browser session",
        )
