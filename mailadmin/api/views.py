"""The base class of every API view: envelope helpers and the optional x-api-version header."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from mailadmin.api.permissions import require
from mailadmin.api.schema import PROBLEM, envelope
from mailadmin.errors import ServiceError

API_VERSION = "1"
SUPPORTED_VERSIONS = {"1"}


def ok(data: Any = None, status: int = 200) -> Response:
    return Response({"data": data}, status=status)


class ApiView(APIView):
    def initial(self, request, *args, **kwargs):
        requested = request.headers.get("x-api-version")
        if requested is not None and requested.strip() not in SUPPORTED_VERSIONS:
            raise ServiceError(
                f"Unsupported API version: {requested}. Supported: "
                + ", ".join(sorted(SUPPORTED_VERSIONS))
            )
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["x-api-version"] = API_VERSION
        return response


class MethodPermissionApi(ApiView):
    """One URL, several operations: each HTTP method declares the permission it needs."""

    method_permissions: dict[str, str] = {}

    def get_permissions(self):
        method = "GET" if self.request.method == "HEAD" else self.request.method
        permission = self.method_permissions.get(method)
        if permission is None:
            return super().get_permissions()
        return [require(permission)()]


class ApiRootView(ApiView):
    """Who the caller is and what it may do: the cheapest authenticated call."""

    @extend_schema(
        responses={
            200: envelope(
                "Whoami",
                inline_serializer(
                    name="WhoamiData",
                    fields={
                        "name": serializers.CharField(),
                        "type": serializers.CharField(),
                        "tenant": serializers.CharField(allow_null=True),
                        "permissions": serializers.ListField(child=serializers.CharField()),
                        "version": serializers.CharField(),
                    },
                ),
            ),
            401: PROBLEM,
        }
    )
    def get(self, request):
        actor = request.user
        return ok(
            {
                "name": actor.name,
                "type": actor.type,
                "tenant": actor.tenant.name if actor.tenant_id else None,
                "permissions": sorted(actor.permissions),
                "version": API_VERSION,
            }
        )
