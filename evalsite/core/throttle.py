"""Throttled logins: the login form (django-axes) and the token API share one failure record.

Per user and per client address (without it, 20 wrong passwords in 5 s went through): after
`LOGIN_FAILURE_LIMIT` failures for one username, or from one address, further attempts are refused
with HTTP 429 until `LOGIN_COOLOFF_MINUTES` have passed, even with the right password.

Wrong API tokens count against the client address only (a token names no user, and locking a
shared pseudo-user would let anyone lock every API client out).

The client address is `evalsite.core.clientaddr.client_address` (X-Forwarded-For only from a
trusted proxy). Lockout rows (axes' AccessAttempt, one per username × address × user agent) are
bounded: a locked-out client's further failures write nothing
(AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT off), so one address writes at most
`LOGIN_FAILURE_LIMIT` rows per cool-off, whatever usernames or user agents it rotates.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request

from evalsite.core.answers import json_error

# Recorded as the "username" of failed token attempts (parentheses: never a real username).
TOKEN_ATTEMPT = "(api token)"


def _is_token_attempt(request_or_attempt: Any, credentials: dict[str, Any] | None) -> bool:
    username = (credentials or {}).get("username")
    if username is None:
        username = getattr(request_or_attempt, "username", None)  # an AccessAttempt row
    return username == TOKEN_ATTEMPT


def lockout_parameters(
    request_or_attempt: Any, credentials: dict[str, Any] | None = None
) -> list[str | list[str]]:
    """AXES_LOCKOUT_PARAMETERS: username or address for the form, address for tokens."""
    if _is_token_attempt(request_or_attempt, credentials):
        return ["ip_address"]
    return ["username", "ip_address"]


def cooloff_message() -> str:
    minutes = settings.LOGIN_COOLOFF_MINUTES
    return (
        f"Too many failed sign-in attempts for this account or from this address: try again in "
        f"{minutes} minute{'s' if minutes != 1 else ''}, or ask an admin to unlock it."
    )


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with the reason, as JSON for API clients, else the page."""
    if "/api/" in request.path or request.headers.get("x-requested-with") == "XMLHttpRequest":
        return json_error(429, cooloff_message())
    context = {"failure_limit": settings.LOGIN_FAILURE_LIMIT, "cooloff_timedelta":
               settings.AXES_COOLOFF_TIME}  # fmt: skip
    return render(request, "registration/locked_out.html", context, status=429)


class GuardedTokenAuthentication(TokenAuthentication):
    """DRF token authentication whose wrong tokens are counted and throttled by address."""

    def authenticate(self, request: Request) -> Any:
        django_request = request._request
        credentials = {"username": TOKEN_ATTEMPT}
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith("token "):
            return super().authenticate(request)  # no token: session auth may apply
        if AxesProxyHandler.is_locked(django_request, credentials):
            raise exceptions.Throttled(detail=cooloff_message())
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            user_login_failed.send(
                sender=GuardedTokenAuthentication, credentials=credentials, request=django_request
            )
            raise
