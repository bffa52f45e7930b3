"""DKIM key and DNS record API (management API: /api/dkim, /api/dns/records/{domain})."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from apps.accounts.permissions import Perm
from apps.domains import selectors, services
from apps.domains.serializers import (
    DkimCreateInput,
    DkimKeyOutput,
    DkimListParams,
    DnsRecordOutput,
    dkim_key_data,
)
from mailadmin.api.pagination import paginate_request
from mailadmin.api.permissions import require
from mailadmin.api.schema import NULL_DATA, PAGE_PARAMETERS, PROBLEM, envelope, page_of
from mailadmin.api.views import ApiView, MethodPermissionApi, ok

DKIM_PAGE = page_of("DkimKeyPage", DkimKeyOutput())


class DkimCollectionApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.DKIM_SIGNATURE_GET, "POST": Perm.DKIM_SIGNATURE_CREATE}

    @extend_schema(
        operation_id="dkim_list",
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter(
                "domain",
                {"type": "string", "maxLength": 255},
                description="Only this domain's keys (empty: all)",
            ),
        ],
        responses={200: DKIM_PAGE, 400: PROBLEM, 403: PROBLEM, 404: PROBLEM},
    )
    def get(self, request):
        params = DkimListParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        domain = None
        if params.validated_data.get("domain"):
            domain = selectors.domain_get(
                actor=request.user, name_or_id=params.validated_data["domain"]
            )
        queryset = selectors.dkim_key_list(actor=request.user, domain=domain)
        return ok(paginate_request(request, queryset, dkim_key_data))

    @extend_schema(
        operation_id="dkim_create",
        request=DkimCreateInput,
        responses={200: NULL_DATA, 400: PROBLEM, 403: PROBLEM, 404: PROBLEM},
    )
    def post(self, request):
        data = DkimCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        domain = selectors.domain_get(actor=request.user, name_or_id=values["domain"])
        services.dkim_key_create(
            actor=request.user,
            domain=domain,
            algorithm=values["algorithm"],
            selector=values.get("selector") or None,
        )
        return ok(None)


class DkimDetailApi(ApiView):
    permission_classes = [require(Perm.DKIM_SIGNATURE_CREATE)]

    @extend_schema(
        operation_id="dkim_delete",
        parameters=[OpenApiParameter("key_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: NULL_DATA, 403: PROBLEM, 404: PROBLEM},
    )
    def delete(self, request, key_id: int):
        key = selectors.dkim_key_get(actor=request.user, key_id=key_id)
        services.dkim_key_delete(actor=request.user, key=key)
        return ok(None)


class DnsRecordsApi(ApiView):
    permission_classes = [require(Perm.DNS_RECORD_GET)]

    @extend_schema(
        operation_id="dns_records_get",
        parameters=[
            OpenApiParameter(
                "domain",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="Domain name (Unicode or punycode) or id",
            )
        ],
        responses={
            200: envelope("DnsRecords", serializers.ListField(child=DnsRecordOutput())),
            403: PROBLEM,
            404: PROBLEM,
        },
    )
    def get(self, request, domain: str):
        records = selectors.domain_dns_records(actor=request.user, name_or_id=domain)
        return ok([{k: r[k] for k in ("type", "name", "content")} for r in records])
