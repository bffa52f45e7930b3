"""The superadmin's tenant switcher: pick one tenant (or all of them) and the console's
lists narrow to it.

The choice lives in the session as a tenant id. It can only narrow: `narrow()` filters
what a selector already scoped, it applies to superadmins alone (a stored value is
ignored for anyone who is not a superadmin now), and the API never reads it. Detail pages
do not narrow: a superadmin following a link to another tenant's object still sees it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest

from apps.accounts.models import Principal, PrincipalType

SESSION_KEY = "_mailadmin_tenant"
MAX_SWITCHER_TENANTS = 500  # a longer menu helps nobody; the selected one is always in it
_UNSET = object()

M = TypeVar("M", bound=Model)


def _switches(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.reaches_all_tenants)


def selected_tenant(request: HttpRequest) -> Principal | None:
    """The tenant the superadmin picked, or None for all tenants (one query, cached)."""
    cached = getattr(request, "_selected_tenant", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    tenant = None
    if _switches(request):
        tenant_id = request.session.get(SESSION_KEY)
        if isinstance(tenant_id, int):
            tenant = (
                Principal.objects.filter(pk=tenant_id, type=PrincipalType.TENANT)
                .only("id", "name", "type")
                .first()
            )
            if tenant is None:  # deleted since: back to all tenants
                request.session.pop(SESSION_KEY, None)
    request._selected_tenant = tenant  # type: ignore[attr-defined]
    return tenant


def select_tenant(request: HttpRequest, tenant: Principal | None) -> None:
    """Remember the superadmin's choice (None: all tenants)."""
    if tenant is None:
        request.session.pop(SESSION_KEY, None)
    else:
        request.session[SESSION_KEY] = tenant.pk
    request._selected_tenant = tenant  # type: ignore[attr-defined]


def narrow(queryset: QuerySet[M], request: HttpRequest, *, tenant_field: str = "tenant"):
    """`queryset` (already scoped by a selector) limited to the selected tenant, if any."""
    tenant = selected_tenant(request)
    if tenant is None:
        return queryset
    return queryset.filter(**{f"{tenant_field}_id": tenant.pk})


class TenantSwitcher:
    """What the base layout's switcher shows; the tenant menu is read only when rendered."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request

    @cached_property
    def selected(self) -> Principal | None:
        return selected_tenant(self.request)

    @cached_property
    def tenants(self) -> list[Principal]:
        rows = list(
            Principal.objects.filter(type=PrincipalType.TENANT)
            .only("id", "name", "type")
            .order_by("name")[:MAX_SWITCHER_TENANTS]
        )
        if self.selected is not None and all(t.pk != self.selected.pk for t in rows):
            rows.append(self.selected)
        return rows
