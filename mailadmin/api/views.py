"""The base class of every API view: envelope helpers, the optional x-api-version header,
and permissions declared per method (an undeclared method is refused)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from mailadmin.api.permissions import AUTHENTICATED, Authenticated, Public, Undeclared, require
from mailadmin.api.schema import envelope
from mailadmin.errors import ServiceError

API_VERSION = "1"
SUPPORTED_VERSIONS = {"1"}


def ok(data: Any = None, status: int = 200) -> Response:
    return Response({"data": data}, status=status)


class ApiView(APIView):
    # No OPTIONS: DRF's metadata answer would be one more operation to declare and secure.
    http_method_names = ["get", "post", "put", "patch", "delete", "head"]

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
    """One URL, several operations: each HTTP method declares the permission it needs.

    Values are permission names (a tuple: any one of them), or AUTHENTICATED / PUBLIC from
    mailadmin.api.permissions.
    A method the view answers but does not list here is refused (fail closed); a method it
    does not answer at all gets the usual 405 (after authentication).
    """

    method_permissions: dict[str, str | tuple[str, ...]] = {}

    def get_permissions(self):
        method = "GET" if self.request.method == "HEAD" else self.request.method
        permission = self.method_permissions.get(method)
        if permission is not None:
            return [require(permission)()]
        if method.lower() in self.http_method_names and hasattr(self, method.lower()):
            return [Undeclared()]
        return [Authenticated()]  # nothing to protect: the 405 follows


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema: public, like the API's own documentation."""

    permission_classes = [Public]


class DocsView(SpectacularSwaggerView):
    permission_classes = [Public]


class ApiRootView(MethodPermissionApi):
    """Who the caller is and what it may do: the cheapest authenticated call."""

    method_permissions = {"GET": AUTHENTICATED}

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
