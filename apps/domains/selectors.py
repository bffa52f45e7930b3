"""Reads of domains and their DKIM keys, scoped to what the acting principal may see.

Tenant isolation lives in `_visible_domains` and `dkim_key_list`, both built on
mailadmin.tenancy.scope.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.emails import InvalidAddress, normalize_domain
from apps.accounts.models import Principal, PrincipalType
from apps.domains.models import DkimKey
from mailadmin.errors import NotFound
from mailadmin.tenancy import scope


def _visible_domains(actor: Principal) -> QuerySet[Principal]:
    return scope(Principal.objects.filter(type=PrincipalType.DOMAIN), actor)


def domain_list(*, actor: Principal, search: str = "") -> QuerySet[Principal]:
    """The actor's domains with their DNS profile, by name (one query per page)."""
    domains = _visible_domains(actor).select_related("domain_profile", "tenant")
    search = (search or "").strip()[:255]
    if search:
        try:
            ascii_search = search.lower().encode("idna").decode("ascii")
        except UnicodeError:
            ascii_search = search
        domains = domains.filter(name__icontains=ascii_search)
    return domains.order_by("name")


def domain_get(*, actor: Principal, name_or_id: str | int) -> Principal:
    """By id, or by name in Unicode or punycode, any case; foreign and missing are NotFound."""
    key = str(name_or_id).strip()
    queryset = _visible_domains(actor).select_related("domain_profile")
    if key.isdigit() and len(key) < 19:
        domain = queryset.filter(pk=int(key)).first()
    else:
        try:
            name = normalize_domain(key)
        except InvalidAddress:
            raise NotFound() from None
        domain = queryset.filter(name=name).first()
    if domain is None:
        raise NotFound()
    return domain


def dkim_key_list(
    *, actor: Principal, domain: Principal | None = None, active_only: bool = False
) -> QuerySet[DkimKey]:
    """Keys the actor may see (of one domain if given), newest first."""
    queryset = scope(DkimKey.objects.all(), actor).select_related("domain")
    if domain is not None:
        queryset = queryset.filter(domain=domain)
    if active_only:
        queryset = queryset.filter(is_active=True)
    return queryset.order_by("domain__name", "-created_at", "-id")


def dkim_key_get(*, actor: Principal, key_id: int) -> DkimKey:
    key = scope(DkimKey.objects.all(), actor).select_related("domain").filter(pk=key_id).first()
    if key is None:
        raise NotFound()
    return key
