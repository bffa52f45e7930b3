"""Principal and audit-log API: parse, call a selector or service, render."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from apps.accounts.models import PrincipalType
from apps.accounts.permissions import Perm
from apps.accounts.principals import selectors, services
from apps.accounts.principals.serializers import (
    AuditEventOutput,
    AuditListParams,
    PatchOperationInput,
    PrincipalCreateInput,
    PrincipalListParams,
    PrincipalOutput,
    parse_patch,
    principal_data,
)
from mailadmin.api.pagination import CURSOR_PARAMETER, paginate_request
from mailadmin.api.permissions import require
from mailadmin.api.schema import NULL_DATA, PAGE_PARAMETERS, PROBLEM, envelope, page_of
from mailadmin.api.views import ApiView, MethodPermissionApi, ok
from mailadmin.core.models import AuditEvent

_TYPE = "(" + "|".join(PrincipalType.values) + ")"
TYPES_PATTERN = rf"^ *({_TYPE})? *(, *({_TYPE})? *)*$"


def _text(max_length: int) -> dict:
    return {"type": "string", "maxLength": max_length, "description": "Empty: no filter"}


DATETIME_OR_EMPTY = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "maxLength": 0}],
    "description": "Empty: no filter",
}

ID_PARAMETER = OpenApiParameter(
    "id_or_name", OpenApiTypes.STR, OpenApiParameter.PATH, description="Numeric id or name"
)


class PrincipalCollectionApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.PRINCIPAL_LIST, "POST": Perm.PRINCIPAL_CREATE}

    @extend_schema(
        operation_id="principal_list",
        parameters=[
            *PAGE_PARAMETERS,
            CURSOR_PARAMETER,
            OpenApiParameter(
                "types",
                {"type": "string", "pattern": TYPES_PATTERN},
                description="Comma-separated types",
            ),
            OpenApiParameter(
                "filter",
                {"type": "string", "maxLength": 255},
                description=(
                    "Substring of the name, description or an address (any case). A broad "
                    "search is not counted: its total is an estimate (totalEstimated)."
                ),
            ),
            OpenApiParameter(
                "order", OpenApiTypes.STR, enum=["name", "-name", "created", "-created", "type"]
            ),
        ],
        responses={200: page_of("PrincipalPage", PrincipalOutput()), 400: PROBLEM, 403: PROBLEM},
    )
    def get(self, request):
        params = PrincipalListParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        listing = selectors.principal_list(
            actor=request.user,
            types=params.validated_data["types"],
            search=params.validated_data.get("filter", ""),
            order_by=params.validated_data.get("order", "name"),
        )
        return ok(
            paginate_request(request, listing, principal_data, prepare=selectors.with_members)
        )

    @extend_schema(
        operation_id="principal_create",
        request=PrincipalCreateInput,
        responses={
            200: envelope("PrincipalId", serializers.IntegerField()),
            400: PROBLEM,
            403: PROBLEM,
        },
    )
    def post(self, request):
        data = PrincipalCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        principal = services.principal_create(actor=request.user, data=dict(data.validated_data))
        return ok(principal.pk)


class PrincipalDetailApi(MethodPermissionApi):
    method_permissions = {
        "GET": Perm.PRINCIPAL_GET,
        "PATCH": Perm.PRINCIPAL_UPDATE,
        "DELETE": Perm.PRINCIPAL_DELETE,
    }

    @extend_schema(
        operation_id="principal_get",
        parameters=[ID_PARAMETER],
        responses={
            200: envelope("PrincipalEnvelope", PrincipalOutput()),
            403: PROBLEM,
            404: PROBLEM,
        },
    )
    def get(self, request, id_or_name: str):
        principal = selectors.principal_get(actor=request.user, id_or_name=id_or_name)
        return ok(principal_data(principal))

    @extend_schema(
        operation_id="principal_update",
        parameters=[ID_PARAMETER],
        request=PatchOperationInput(many=True),
        responses={200: NULL_DATA, 400: PROBLEM, 403: PROBLEM, 404: PROBLEM},
    )
    def patch(self, request, id_or_name: str):
        principal = selectors.principal_get(actor=request.user, id_or_name=id_or_name)
        operations = parse_patch(request.data)
        services.principal_update(actor=request.user, principal=principal, operations=operations)
        return ok(None)

    @extend_schema(
        operation_id="principal_delete",
        parameters=[ID_PARAMETER],
        responses={200: NULL_DATA, 400: PROBLEM, 403: PROBLEM, 404: PROBLEM},
    )
    def delete(self, request, id_or_name: str):
        principal = selectors.principal_get(actor=request.user, id_or_name=id_or_name)
        services.principal_delete(actor=request.user, principal=principal)
        return ok(None)


class AuditListApi(ApiView):
    permission_classes = [require(Perm.AUDIT_LOG_VIEW)]

    @extend_schema(
        operation_id="audit_list",
        parameters=[
            *PAGE_PARAMETERS,
            CURSOR_PARAMETER,
            OpenApiParameter("action", _text(64)),
            OpenApiParameter("actor", _text(255), description="Name of the actor"),
            OpenApiParameter("object_type", _text(64)),
            OpenApiParameter("object_id", _text(64)),
            OpenApiParameter(
                "interface", {"type": "string", "enum": ["", *AuditEvent.Interface.values]}
            ),
            OpenApiParameter("since", DATETIME_OR_EMPTY),
            OpenApiParameter("until", DATETIME_OR_EMPTY),
        ],
        responses={200: page_of("AuditPage", AuditEventOutput()), 400: PROBLEM, 403: PROBLEM},
    )
    def get(self, request):
        params = AuditListParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        queryset = selectors.audit_list(actor=request.user, filters=params.validated_data)
        return ok(paginate_request(request, queryset, lambda e: AuditEventOutput(e).data))
