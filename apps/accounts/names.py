"""The one rule for principal names, shared by both rooms (they are login names)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q, QuerySet

if TYPE_CHECKING:
    from apps.accounts.models import Principal

NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,255}$")
# The same rule for the OpenAPI schema (with maxLength 255): one non-digit at least.
NAME_PATTERN = r"^[A-Za-z0-9._@-]*[A-Za-z._@-][A-Za-z0-9._@-]*$"


def name_problem(name: object) -> str | None:
    """Why `name` cannot name a principal (a message for a person), or None when it can."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        shown = name if isinstance(name, str) else ""
        return (
            f"The name '{shown[:255]}' is not valid: use letters, digits, '.', '_', '-' and '@' "
            "(at most 255 characters)."
        )
    if name.isdigit():
        return f"The name '{name}' is not valid: it can't be only digits."
    return None


def foreign_domain_problem(name: str, tenant_id: int | None) -> str | None:
    """Why a principal of `tenant_id` (None: the server's own) cannot take `name`: it is an
    address on a domain hosted here (or an alias of one) that is not its tenant's. A name is
    a login name and holds its address against new mailboxes, so another tenant's address
    as a name would lock that tenant out of it. The words are those of an address on such
    a domain; an address on a domain nobody hosts is a name like any other."""
    from apps.accounts.emails import InvalidAddress, display_domain, normalize_domain
    from apps.accounts.models import Principal, PrincipalType

    if "@" not in name:
        return None
    try:
        domain = normalize_domain(name.rpartition("@")[2])
    except InvalidAddress:
        return None
    hosted = Principal.objects.filter(type=PrincipalType.DOMAIN).filter(
        Q(name=domain) | Q(domain_aliases__alias=domain)
    )
    if not hosted.exclude(tenant_id=tenant_id).exists():
        return None
    shown = display_domain(domain)
    if tenant_id is None:
        return f"The domain {shown} is not one of the server's own domains."
    return f"The domain {shown} is not a domain of this tenant."


def foreign_parent_problem(actor: Principal, name: str, tenant_id: int | None) -> str | None:
    """Why `actor` cannot put the domain or domain alias `name` (normalized) into tenant
    `tenant_id`: it lies under a domain (or alias) hosted here for someone else, like
    sub.a.example while a.example is another tenant's, and would take mail and DNS names
    that tenant counts as its own. The closest such parent is named, never its tenant. A
    superadmin may still do it. The one check for every way a domain or alias is made."""
    from apps.accounts.emails import display_domain
    from apps.accounts.models import Principal, PrincipalType

    if actor.reaches_all_tenants:
        return None
    labels = name.split(".")
    parents = [".".join(labels[i:]) for i in range(1, len(labels) - 1)]  # never the TLD
    if not parents:
        return None
    rows = (
        Principal.objects.filter(type=PrincipalType.DOMAIN)
        .exclude(tenant_id=tenant_id)
        .filter(Q(name__in=parents) | Q(domain_aliases__alias__in=parents))
        .values_list("name", "domain_aliases__alias")
    )
    taken = {n for row in rows for n in row if n in parents}
    if not taken:
        return None
    parent = max(taken, key=len)
    return f"{display_domain(name)} is under {display_domain(parent)}, a domain of another tenant."


class NameKey(models.Func):
    """A principal's name as its prefix index holds it (migration 0005): order by it
    and match `startswith` on it (with an upper-case term) and the index serves both,
    however many of a million rows match. PostgreSQL: UPPER(name) in the "C" collation;
    SQLite: name COLLATE NOCASE."""

    arity = 1
    template = "UPPER(%(expressions)s)"
    output_field = models.TextField()

    def as_postgresql(self, compiler, connection, **extra):
        template = '(UPPER(%(expressions)s::text) COLLATE "C")'
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        template = "(%(expressions)s COLLATE NOCASE)"
        return self.as_sql(compiler, connection, template=template, **extra)


def name_starts_with(
    queryset: QuerySet, term: str, *, field: str = "name", also: Q | None = None
) -> QuerySet:
    """Rows whose principal name (`field`) begins with `term` in any case, or that match
    `also`, through the name's prefix index: never a leading wildcard."""
    matches = Q(_name_key__startswith=term.upper())
    if also is not None:
        matches |= also
    return queryset.alias(_name_key=NameKey(field)).filter(matches)
