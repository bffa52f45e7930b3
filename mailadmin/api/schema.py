"""OpenAPI descriptions: our authentication classes, the envelope, and the problem body.

`AutoSchema` declares the errors every operation can answer (400 for a bad parameter or
x-api-version, 401, 403, 404, 429; 413 and 415 where a body is read) with the Problem
schema, so no view has to list them and no operation can forget one.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter, extend_schema_field, inline_serializer
from rest_framework import serializers

from mailadmin.api.pagination import MAX_LIMIT, MAX_MAX_TOTAL, MAX_PAGE
from mailadmin.api.serializers import StrictSerializer


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "mailadmin.api.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "API key or OAuth token"}


class BasicScheme(OpenApiAuthenticationExtension):
    target_class = "mailadmin.api.auth.BasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic", "description": "Password or app password"}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "mailadmin.api.auth.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


def strict_inline(name: str, fields: dict[str, serializers.Field]) -> serializers.Serializer:
    """A request body described inline whose view refuses any field it does not list."""
    return type(name, (StrictSerializer,), dict(fields))()


def envelope(name: str, data: serializers.Field) -> serializers.Serializer:
    """The schema of {"data": <data>}."""
    return inline_serializer(name=name, fields={"data": data})


@extend_schema_field({"type": "null"})  # OpenAPI 3.1 (SPECTACULAR_SETTINGS["OAS_VERSION"])
class NullField(serializers.Field):
    """A value that is always null: `{"data": null}` says "done" and nothing more."""

    def to_representation(self, value: Any) -> None:
        return None


PROBLEM = inline_serializer(
    name="Problem",
    fields={
        "type": serializers.CharField(),
        "status": serializers.IntegerField(),
        "title": serializers.CharField(),
        "detail": serializers.CharField(),
        "errors": serializers.ListField(
            required=False,
            help_text="Each invalid field with a message for a person",
            child=inline_serializer(
                name="ProblemFieldError",
                fields={"field": serializers.CharField(), "message": serializers.CharField()},
            ),
        ),
        "permission": serializers.CharField(
            required=False, help_text="The permission the caller lacks (403)"
        ),
    },
)
# Answered by any operation: a bad query parameter or x-api-version (400), no or bad
# credentials (401), a missing permission (403), an unknown object (404), a lockout (429).
COMMON_ERRORS = (400, 401, 403, 404, 429)
BODY_ERRORS = (413, 415)


class AutoSchema(SpectacularAutoSchema):
    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        if body is not None:
            body["required"] = True  # every operation that declares a body reads one
        return body

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False  # "Unrecognized field: ..."
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        # DRF refuses a blank CharField unless allow_blank: say so ("may not be blank").
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not field.allow_blank
            and "enum" not in schema
            and "minLength" not in schema
        ):
            schema["minLength"] = 1
        return schema

    def _get_response_bodies(self, direction="response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        codes = COMMON_ERRORS + (BODY_ERRORS if self.method in {"POST", "PUT", "PATCH"} else ())
        for code in codes:
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(PROBLEM, str(code))
        return responses


def page_of(name: str, item: serializers.Field) -> serializers.Serializer:
    """The schema of a list response: {"data": {"items": [<item>...], "total": N}}, plus
    the keyset cursors of lists that page by cursor (mailadmin.api.pagination)."""
    return envelope(
        name,
        inline_serializer(
            name=f"{name}Data",
            fields={
                "items": serializers.ListField(child=item),
                "total": serializers.IntegerField(),
                "next": serializers.CharField(
                    required=False, allow_null=True, help_text="Cursor of the next page"
                ),
                "previous": serializers.CharField(
                    required=False, allow_null=True, help_text="Cursor of the previous page"
                ),
                "totalEstimated": serializers.BooleanField(
                    required=False, help_text="total is an estimate (broad searches)"
                ),
            },
        ),
    )


PAGE_PARAMETERS = [
    OpenApiParameter(
        "page",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
        description="1-based page number",
    ),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        description=f"Items per page (at most {MAX_LIMIT})",
    ),
    OpenApiParameter(
        "max-total",
        {"type": "integer", "minimum": 1, "maximum": MAX_MAX_TOTAL},
        description="Stop counting at this total",
    ),
]
NULL_DATA = envelope("NullData", NullField())
