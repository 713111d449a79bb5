"""API token scopes: what a token may do, on top of (never beyond) its user's role.

Every DRF view declares `required_scope`: the scope each HTTP method needs (`None` for reads:
any valid token may read what its user may read). The role permission classes
(`roles.CanResearch`, `roles.CanRelease`) check it, so a token-authenticated request needs both
its user's role and the token's scope; a view that declares nothing refuses every token (fail
closed), and `tests/core/test_scopes.py` fails for such a view. Session (browser) requests are
not scoped: the user's role alone decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

if TYPE_CHECKING:  # roles imports this module inside its permission checks
    from evalsite.core.roles import Someone

V = TypeVar("V", bound=Callable[..., object])

UPLOAD = "upload"  # register model versions
EVALUATE = "evaluate"  # start, cancel, reproduce and import runs; compute fairness reports
REPORT = "report"  # build release reports and gates
ALIAS = "alias"  # move a family's aliases (production also needs the release role)
CAMPAIGN = "campaign"  # create and manage crowd campaigns
DECIDE = "decide"  # record release decisions (release managers and admins)

SCOPES: dict[str, str] = {
    UPLOAD: "register model versions",
    EVALUATE: "start, cancel, reproduce and import evaluation runs; compute fairness reports",
    REPORT: "build release reports and run the gate",
    ALIAS: "move aliases (production needs the release role too)",
    CAMPAIGN: "create and manage crowd campaigns",
    DECIDE: "record release decisions (release managers and admins)",
}
# What a model team's CI needs for upload → gate, and nothing else.
CI_SCOPES = (UPLOAD, EVALUATE, REPORT)

ScopeMap = dict[str, str | None]  # HTTP method → the scope it needs (None: any token)
READ_METHODS = ("GET", "HEAD", "OPTIONS")


def role_scopes(user: Someone) -> list[str]:
    """Every scope the user's role allows (a token never holds more)."""
    from evalsite.core.roles import can_release, can_research

    if can_release(user):
        return list(SCOPES)
    if can_research(user):
        return [s for s in SCOPES if s != DECIDE]
    return []


def parse_scopes(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """Comma-separated text or a list → validated names in SCOPES order (ValueError: bad one)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = {s.strip().lower() for s in items if s and s.strip()}
    unknown = sorted(names - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; scopes are: {', '.join(SCOPES)}")
    return [s for s in SCOPES if s in names]


def view_scope(view: Any, method: str) -> tuple[bool, str | None]:
    """(declared, scope) of `view` for `method`: declared False when the view names nothing."""
    mapping: ScopeMap | None = getattr(view, "required_scope", None)
    if method.upper() in READ_METHODS and method.upper() != "GET":
        method = "GET"
    if mapping is None or method.upper() not in mapping:
        return False, None
    return True, mapping[method.upper()]


def check_token_scope(request: Request, view: APIView) -> bool:
    """True when the request is not token-authenticated or its token holds the scope; else
    PermissionDenied naming the missing scope (the 403 body says what to ask for)."""
    policy = getattr(request, "token_policy", None)
    auth = getattr(request, "auth", None)
    if auth is None or (policy is None and not hasattr(auth, "key")):
        return True  # a session request: the role alone decides
    declared, scope = view_scope(view, request.method or "GET")
    if not declared:
        raise PermissionDenied(
            f"{request.method} {request.path} declares no token scope; use a browser session"
        )
    return require_token_scope(request, scope)


def require_token_scope(request: Request, scope: str | None) -> bool:
    """For a view whose need depends on the body (the gate with a file also needs `upload`)."""
    policy = getattr(request, "token_policy", None)
    auth = getattr(request, "auth", None)
    if scope is None or auth is None or (policy is None and not hasattr(auth, "key")):
        return True
    held = policy.scopes if policy is not None else role_scopes(request.user)
    if scope not in held:
        raise PermissionDenied(
            f"this API token lacks the {scope!r} scope ({SCOPES[scope]}); it has: "
            f"{', '.join(held) or 'none'}. Create a token with that scope on the API tokens page."
        )
    return True


def scoped(
    mapping: ScopeMap, body: Mapping[str, type[BaseSerializer]] | None = None
) -> Callable[[V], V]:
    """For `@api_view` functions (put it above `@api_view`): declare their `required_scope` and
    the serializer of each method's body (`request_serializers`, for the OpenAPI schema)."""

    def decorate(view: V) -> V:
        cls = view.cls  # type: ignore[attr-defined]  # the APIView class @api_view made
        cls.required_scope = mapping
        cls.request_serializers = dict(body or {})
        return view

    return decorate
