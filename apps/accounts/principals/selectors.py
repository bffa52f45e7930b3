"""Reads of principals and the audit log, scoped to what the acting principal may see.

Tenant isolation lives in `_visible_principals` and `audit_list`, each built on
mailadmin.tenancy.scope; nothing else here filters by tenant.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from apps.accounts.emails import search_variants
from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
from mailadmin.core.models import AuditEvent
from mailadmin.errors import NotFound
from mailadmin.tenancy import scope

ORDERINGS = {
    "name": ("name",),
    "-name": ("-name",),
    "created": ("created_at", "pk"),
    "-created": ("-created_at", "-pk"),
    "type": ("type", "name"),
}
MAX_SEARCH = 255


def _visible_principals(actor: Principal) -> QuerySet[Principal]:
    """The one scoping rule: the actor's tenant; everything (tenants too) for superadmins.

    Tenant rows have no tenant, so scope() hides them (and the built-in roles and the
    superadmins) from tenant admins.
    """
    return scope(Principal.objects.all(), actor)


def _names_only() -> QuerySet[Principal]:
    return Principal.objects.only("id", "name", "type", "tenant_id").order_by("name")


def with_relations(queryset: QuerySet[Principal]) -> QuerySet[Principal]:
    """What rendering a principal needs, in a constant number of queries per page."""
    return queryset.select_related("tenant").prefetch_related(
        Prefetch("emails", queryset=PrincipalEmail.objects.order_by("position")),
        # role_permissions() reads these: no deferred-field query per role.
        Prefetch(
            "roles",
            queryset=_names_only().only(
                "id", "name", "type", "tenant_id", "enabled_permissions", "disabled_permissions"
            ),
        ),
        Prefetch("member_of", queryset=_names_only()),
        Prefetch("members", queryset=_names_only()),
        Prefetch("role_holders", queryset=_names_only()),
    )


def principal_list(
    *,
    actor: Principal,
    types: Iterable[str] | None = None,
    search: str = "",
    order_by: str = "name",
    tenant_id: int | None = None,
) -> QuerySet[Principal]:
    queryset = _visible_principals(actor)
    types = [t for t in (types or []) if t]
    if types:
        queryset = queryset.filter(type__in=types)
    if tenant_id is not None:
        queryset = queryset.filter(tenant_id=tenant_id)
    search = (search or "").strip()[:MAX_SEARCH]
    if search:
        match = Q(name__icontains=search) | Q(description__icontains=search)
        addresses = Q()
        for variant in search_variants(search):
            addresses |= Q(address__contains=variant)
        # A subquery, not a join: no duplicate rows and no DISTINCT over the page.
        match |= Q(pk__in=PrincipalEmail.objects.filter(addresses).values("principal_id"))
        queryset = queryset.filter(match)
    ordering = ORDERINGS.get(order_by, ORDERINGS["name"])
    return with_relations(queryset.order_by(*ordering))


def principal_get(*, actor: Principal, id_or_name: str | int) -> Principal:
    """By numeric id or by name; foreign and missing principals are the same NotFound."""
    queryset = with_relations(_visible_principals(actor))
    key = str(id_or_name)
    lookup = Q(pk=int(key)) if key.isdigit() and len(key) < 19 else Q(name=key)
    principal = queryset.filter(lookup).first()
    if principal is None:
        raise NotFound()
    return principal


def principal_choices(
    *, actor: Principal, tenant_id: int | None, types: Iterable[str]
) -> QuerySet[Principal]:
    """Names an editor may offer: the visible principals of one tenant, of some types."""
    return (
        _visible_principals(actor)
        .filter(tenant_id=tenant_id, type__in=list(types))
        .only("id", "name", "type")
        .order_by("name")
    )


MAX_DOMAIN_CHOICES = 1000


def address_domains(
    *, actor: Principal, tenant_id: int | None, all_tenants: bool = False
) -> list[tuple[str | None, list[str]]]:
    """The domains addresses may be on, for the address picker: (tenant name, [domain
    names]) groups of one tenant (None: the server's own domains) or, for a superadmin
    creating in any tenant, of every visible one. One query, capped for huge servers."""
    queryset = _visible_principals(actor).filter(type=PrincipalType.DOMAIN)
    if not all_tenants:
        queryset = queryset.filter(tenant_id=tenant_id)
    rows = queryset.order_by("tenant__name", "name").values_list("tenant__name", "name")
    groups: dict[str | None, list[str]] = {}
    for tenant, name in rows[:MAX_DOMAIN_CHOICES]:
        groups.setdefault(tenant, []).append(name)
    return list(groups.items())


AUDIT_FILTERS = ("action", "actor", "object_type", "object_id", "interface", "since", "until")


def audit_list(*, actor: Principal, filters: dict[str, Any] | None = None) -> QuerySet[AuditEvent]:
    """Audit events of the actor's tenant (all of them for superadmins), newest first."""
    queryset = scope(AuditEvent.objects.all(), actor)
    filters = filters or {}
    if filters.get("action"):
        queryset = queryset.filter(action=filters["action"])
    if filters.get("actor"):
        queryset = queryset.filter(actor_name=filters["actor"])
    if filters.get("object_type"):
        queryset = queryset.filter(object_type=filters["object_type"])
    if filters.get("object_id"):
        queryset = queryset.filter(object_id=str(filters["object_id"]))
    if filters.get("interface"):
        queryset = queryset.filter(interface=filters["interface"])
    since: datetime | None = filters.get("since")
    until: datetime | None = filters.get("until")
    if since:
        queryset = queryset.filter(created_at__gte=since)
    if until:
        queryset = queryset.filter(created_at__lt=until)
    return queryset.order_by("-created_at", "-id")


AUDIT_ACTIONS_WINDOW = 2000


def audit_actions(*, actor: Principal) -> list[str]:
    """The actions seen among the latest events, for a filter menu.

    Bounded: a DISTINCT over a tenant's whole history would scan it on every page load.
    """
    recent = scope(AuditEvent.objects.all(), actor).order_by("-created_at", "-id")
    return sorted(set(recent.values_list("action", flat=True)[:AUDIT_ACTIONS_WINDOW]))
