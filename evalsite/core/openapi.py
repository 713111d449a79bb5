"""The OpenAPI schema's view inspector: every operation documents the token header, the error
bodies and status codes every API answers, and the token scope it needs (`x-required-scope`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from evalsite.core.scopes import SCOPES, view_scope

#: Built inline: a declared attribute named `fields` would shadow `Serializer.fields`.
ERROR_DETAIL = inline_serializer(
    name="ErrorDetail",
    fields={
        "code": serializers.CharField(
            help_text="a stable word to branch on: invalid, refused, not_authenticated, "
            "authentication_failed, permission_denied, not_found, conflict, throttled, "
            "server_error, …"
        ),
        "message": serializers.CharField(help_text="what is wrong, for a person to read"),
        "fields": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            required=False,
            help_text="each bad input field with its messages (only when fields are named)",
        ),
    },
)


class ErrorSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The one error body of every endpoint (`evalsite.core.errors.error_body`)."""

    error = ERROR_DETAIL
    exit_code = serializers.IntegerField(
        required=False, help_text="release doors: the release_report / release_decide exit code"
    )


ERRORS = {
    400: "bad input: `error.message`, and `error.fields` with each bad field's messages",
    401: "no token, a wrong token, or an expired one (`error.message` says which)",
    403: "the user's role or the token's scopes do not allow this (`error.message` names the "
    "scope)",
    404: "no such object (`error.code` is `not_found`)",
}


class AutoSchema(BaseAutoSchema):
    """Our API views are plain `APIView`s: a view names the serializer of each method's body in
    `request_serializers` ({"POST": SerializerClass}); answers are JSON objects described in
    prose (the docstrings), so the schema says `object` rather than guess."""

    def _get_serializer(self) -> Any:
        return getattr(self.view, "request_serializers", {}).get(self.method.upper())

    def get_response_serializers(self) -> Any:
        return OpenApiTypes.OBJECT

    def get_operation_id(self) -> str:
        name = getattr(self.view, "__name__", None) or type(self.view).__name__
        return f"{name}_{self.method.lower()}"

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        bodies: dict[str, Any] = super()._get_response_bodies(direction)
        method = self.method.upper()
        codes = [401, 403, 404] if method == "GET" else [400, 401, 403, 404]
        for code in codes:
            if str(code) not in bodies:
                bodies[str(code)] = self._get_response_for_code(
                    OpenApiResponse(response=ErrorSerializer, description=ERRORS[code]),
                    str(code),
                    direction=direction,
                )
        return bodies

    def get_description(self) -> str:  # type: ignore[override]  # drf-spectacular's signature
        text = super().get_description() or ""
        declared, scope = view_scope(self.view, self.method)
        need = (
            f"Token scope: `{scope}` ({SCOPES[scope]})."
            if scope
            else "Token scope: any (a read)."
            if declared
            else "Token scope: none declared (session only)."
        )
        return f"{text}\n\n{need}".strip()

    def get_operation(self, *args: Any, **kwargs: Any) -> Any:
        operation = super().get_operation(*args, **kwargs)
        if operation is not None:
            operation["x-required-scope"] = view_scope(self.view, self.method)[1]
        return operation


class ScopedTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "evalsite.core.tokens.ScopedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; the key's scopes limit what it may do",
        }
