"""OpenAPI descriptions of our authentication classes and the response envelope."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers


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


def envelope(name: str, data: serializers.Field) -> serializers.Serializer:
    """The schema of {"data": <data>}."""
    return inline_serializer(name=name, fields={"data": data})


PROBLEM = inline_serializer(
    name="Problem",
    fields={
        "type": serializers.CharField(),
        "status": serializers.IntegerField(),
        "title": serializers.CharField(),
        "detail": serializers.CharField(),
    },
)


def page_of(name: str, item: serializers.Field) -> serializers.Serializer:
    """The schema of a list response: {"data": {"items": [<item>...], "total": N}}."""
    return envelope(
        name,
        inline_serializer(
            name=f"{name}Data",
            fields={
                "items": serializers.ListField(child=item),
                "total": serializers.IntegerField(),
            },
        ),
    )


PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="1-based page number"),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Items per page (max 1000)"),
    OpenApiParameter("max-total", OpenApiTypes.INT, description="Stop counting at this total"),
]
NULL_DATA = envelope("NullData", serializers.JSONField(allow_null=True))
