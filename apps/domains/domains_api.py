"""The domains API (specs/domains-api.txt) under /api/domains: register, list, get and
delete a tenant's domains. A domain here is the `domain` principal of /api/principal (same
id); the spec's project is our tenant (project_id = the tenant's principal id).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from apps.accounts.permissions import Perm
from apps.domains import selectors, services
from apps.domains.serializers import (
    DomainCreateInput,
    DomainDeletedOutput,
    DomainDeleteParams,
    DomainListParams,
    DomainOutput,
    DomainPageOutput,
    domain_data,
)
from mailadmin.api.pagination import MAX_MAX_TOTAL, InvalidCursor, paginate
from mailadmin.api.schema import PROBLEM, envelope
from mailadmin.api.serializers import custom_error
from mailadmin.api.views import MethodPermissionApi, ok

DOMAIN_ID = OpenApiParameter(
    "domain_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The domain's id, or its name in Unicode or punycode",
)


def _one(domain) -> dict:
    counts = selectors.mailbox_counts([domain.name])
    return domain_data(domain, mailbox_count=counts[domain.name])


class DomainCollectionApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.DOMAIN_LIST, "POST": Perm.DOMAIN_CREATE}

    @extend_schema(
        operation_id="domain_list",
        parameters=[DomainListParams],
        responses={200: envelope("DomainPage", DomainPageOutput())},
    )
    def get(self, request):
        params = DomainListParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        queryset = selectors.domain_page_list(
            actor=request.user,
            search=values.get("search", ""),
            order_by=values["order_by"],
            tenant_id=values.get("project_id"),
        )
        try:
            page = paginate(
                queryset, page=values["page"], limit=values["page_size"], max_total=MAX_MAX_TOTAL
            )
        except InvalidCursor as exc:  # deeper than OFFSET goes (this spec has no cursor)
            raise custom_error("page", f"Invalid value for field page: {exc}") from None
        counts = selectors.mailbox_counts(d.name for d in page.items)
        return ok(
            {
                "total_count": page.total,
                "domains": [domain_data(d, mailbox_count=counts[d.name]) for d in page.items],
            }
        )

    @extend_schema(
        operation_id="domain_create",
        request=DomainCreateInput,
        responses={200: envelope("DomainCreated", DomainOutput()), 409: PROBLEM},
    )
    def post(self, request):
        data = DomainCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        domain = services.domain_register(
            actor=request.user,
            name=data.validated_data["name"],
            tenant_id=data.validated_data.get("project_id"),
        )
        domain = selectors.domain_get(actor=request.user, name_or_id=domain.pk)
        return ok(_one(domain))


class DomainDetailApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.DOMAIN_GET, "DELETE": Perm.DOMAIN_DELETE}

    @extend_schema(
        operation_id="domain_get",
        parameters=[DOMAIN_ID],
        responses={200: envelope("DomainEnvelope", DomainOutput())},
    )
    def get(self, request, domain_id: str):
        return ok(_one(selectors.domain_get(actor=request.user, name_or_id=domain_id)))

    @extend_schema(
        operation_id="domain_delete",
        parameters=[
            DOMAIN_ID,
            OpenApiParameter(
                "confirm",
                OpenApiTypes.BOOL,
                description="Also delete the mailboxes and addresses on the domain",
            ),
        ],
        responses={200: envelope("DomainDeleted", DomainDeletedOutput()), 409: PROBLEM},
    )
    def delete(self, request, domain_id: str):
        params = DomainDeleteParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        domain = selectors.domain_get(actor=request.user, name_or_id=domain_id)
        shown = _one(domain)
        removal = services.domain_delete(
            actor=request.user, domain=domain, confirm=params.validated_data["confirm"]
        )
        shown["removed"] = {
            "mailboxes": removal.mailboxes,
            "addresses": removal.addresses,
            "dkim_keys": removal.dkim_keys,
        }
        return ok(shown)
