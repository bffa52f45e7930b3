"""Reads of principals and the audit log, scoped to what the acting principal may see.

Tenant isolation lives in the scoping entry points, one per model, each built on
mailadmin.tenancy.scope: `principal_scope` and `audit_scope`.
Services, views, the API and other apps start from these; nothing else filters by tenant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    CharField,
    Exists,
    F,
    Func,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    prefetch_related_objects,
)
from django.db.models.expressions import RawSQL

from apps.accounts.emails import search_variants
from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
from apps.accounts.principals import search_index, search_rum
from mailadmin.api.pagination import Ordered, Search
from mailadmin.converters import is_id
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
SEARCH_TABLE = search_index.FTS  # SQLite's FTS5 table (name, description, addresses)
TRIGRAM = 3  # shorter terms have no trigram to look up


def principal_scope(actor: Principal) -> QuerySet[Principal]:
    """The principals `actor` may see: its tenant's; everything (tenants too) for
    superadmins; nothing for a principal of no tenant.

    Tenant rows have no tenant, so tenant admins see neither them nor the built-in roles
    nor the superadmins.
    """
    return scope(Principal.objects.all(), actor)


def audit_scope(actor: Principal) -> QuerySet[AuditEvent]:
    """The audit events of `actor`'s tenant (all of them for superadmins)."""
    return scope(AuditEvent.objects.all(), actor)


def _names_only() -> QuerySet[Principal]:
    return Principal.objects.only("id", "name", "type", "tenant_id").order_by("name")


def with_relations(queryset: QuerySet[Principal]) -> QuerySet[Principal]:
    """What rendering any principal needs, in a constant number of queries per page (the
    members of groups, lists and roles come from `with_members`)."""
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
    )


def with_members(principals: Sequence[Principal]) -> None:
    """The members of the groups and lists and the holders of the roles among
    `principals`: a query for each kind present, none for a page of accounts."""
    groups = [p for p in principals if p.type in (PrincipalType.GROUP, PrincipalType.LIST)]
    roles = [p for p in principals if p.type == PrincipalType.ROLE]
    if groups:
        prefetch_related_objects(groups, Prefetch("members", queryset=_names_only()))
    if roles:
        prefetch_related_objects(roles, Prefetch("role_holders", queryset=_names_only()))


def principal_list(
    *,
    actor: Principal,
    types: Iterable[str] | None = None,
    search: str = "",
    order_by: str = "name",
    tenant_id: int | None = None,
) -> QuerySet[Principal] | Search:
    """The visible principals, ordered; a `Search` to page when `search` is given.

    Search matches a substring of the name, the description or an address (the actor's
    tenant's addresses only), case-insensitively.
    """
    queryset = principal_scope(actor)
    types = [t for t in (types or []) if t]
    if types:
        queryset = queryset.filter(type__in=types)
    if tenant_id is not None:  # one tenant's principals, or the tenant itself among tenants
        field = "pk" if types == [PrincipalType.TENANT] else "tenant_id"
        queryset = queryset.filter(**{field: tenant_id})
    ordered = with_relations(queryset.order_by(*ORDERINGS.get(order_by, ORDERINGS["name"])))
    term = (search or "").strip()[:MAX_SEARCH]
    if not term:
        return ordered
    addresses = sorted(search_variants(term))
    match = Q(name__icontains=term) | Q(description__icontains=term) | _has_address(addresses)
    if connection.vendor == "postgresql":
        return Search(
            ordered,
            match,
            arms=partial(_trigram_arms, queryset, term, addresses),
            sortable=partial(_trigram_sortable, queryset, term, addresses),
            ordered=_rum_ordered(actor, types, tenant_id, term, order_by),
        )
    if connection.vendor == "sqlite" and len(term) >= TRIGRAM and _fts_table_exists():
        query = _fts_query([term, *addresses])
        return Search(
            ordered,
            match,
            arms=partial(_fts_arms, queryset, query, match),
            few=partial(_fts_few, query),
        )
    return Search(ordered, match, arms=_no_index)


def _rum_ordered(
    actor: Principal, types: list[str], tenant_id: int | None, term: str, order_by: str
) -> Callable[[str | None, bool, int], Ordered | None] | None:
    """The matches in name order from the RUM table (search_rum), for this list: the same
    tenant and types as `principal_scope` and the filters give it; None where the table
    cannot answer exactly what `match` does.

    The table matches one upper-cased pattern against the name, the description and the
    addresses, where `match` checks the term against the first two and its
    `search_variants` against the addresses: the same for an ASCII term (one variant, its
    lower case, which UPPER folds as it folds the term). A non-ASCII term may also be
    looked for in its IDNA form: that takes the pg_trgm path.
    """
    if (
        order_by not in ("name", "-name")
        or len(term) < TRIGRAM
        or not term.isascii()
        or search_rum.SEP in term
        or not search_rum.usable(connection)
    ):
        return None
    if actor.reaches_all_tenants:
        scoped, tenant = tenant_id is not None, tenant_id
    elif actor.tenant_id is None or tenant_id not in (None, actor.tenant_id):
        return None  # an empty list: the plain path knows it at once
    else:
        scoped, tenant = True, actor.tenant_id
    if tenant_id is not None and types == [PrincipalType.TENANT]:
        return None  # the tenant itself, by primary key
    return partial(_rum_search, term=term, scoped=scoped, tenant=tenant, types=list(types) or None)


def _rum_search(after: str | None, ascending: bool, count: int, **search: Any) -> Ordered | None:
    return search_rum.search(connection, after=after, ascending=ascending, count=count, **search)


class _RowByRowExists(Exists):
    """EXISTS, checked row by row on PostgreSQL too.

    Under an OR, PostgreSQL may turn EXISTS into a hash of every row the subquery could
    match (every matching address on the server) before looking at the first row, which
    defeats a walk meant to stop after a few rows; OFFSET 0 rules that rewrite out.
    """

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="EXISTS(%(subquery)s OFFSET 0)", **extra)


def _has_address(addresses: list[str]) -> Exists:
    """An address of the row's principal contains one of `addresses`.

    Row by row, the one index to use is the principal's (a handful of addresses each).
    `icontains` compares UPPER(address), which no index covers, so the planner cannot
    pick the address trigram index instead: with stale statistics it did, and ran one
    trigram scan of every matching address on the server per row (minutes in the suite,
    where rolled-back inserts also fill the GIN pending list). Addresses are stored lower
    case, so the match is the same.
    """
    contains = Q()
    for address in addresses:
        contains |= Q(address__icontains=address)
    return _RowByRowExists(PrincipalEmail.objects.filter(contains, principal=OuterRef("pk")))


def _address_contains(text: str) -> Q:
    """An address holds `text` (on the aliases of `_address_parts`).

    When `text` spans the "@" ("jane@exam"), that is: the local part ends with what comes
    before it, and the domain starts with what follows. The first is looked up in the
    index of local parts; the second has no index on purpose, so the planner cannot pick
    the whole-address index, where the trigrams of a domain every address shares would
    read most of the index.
    """
    local, at, domain = text.partition("@")
    if at and local:
        return Q(local_part__endswith=local, domain_part__startswith=domain)
    return Q(address__contains=text)


def _trigram_arms(
    queryset: QuerySet[Principal], term: str, addresses: list[str]
) -> list[QuerySet[Principal]]:
    """The matches as the pg_trgm indexes find them: name or description (one bitmap scan
    of both indexes), and address (joined to the visible principals, so another tenant's
    addresses never count; a join, which can stop early where IN (...) could not)."""
    # The aliases all read the same joined address row.
    return [
        queryset.filter(Q(name__icontains=term) | Q(description__icontains=term)),
        queryset.alias(**_address_parts("emails__address")).filter(_by_address(addresses)),
    ]


def _trigram_sortable(
    queryset: QuerySet[Principal], term: str, addresses: list[str], limit: int
) -> QuerySet[Principal] | None:
    """All the matches as one query over the list's rows, for the pager to sort: the
    principals of the matching addresses first (one query, at most `limit` + 1 of them),
    then one bitmap OR of the name, description and primary key indexes, so each matching
    principal is read once. None when more than `limit` addresses match.

    Joined instead, as in `_trigram_arms`, the planner costs each address's principal as a
    random read against one sequential scan of the whole list and, the trigram estimates
    being rough (58,000 for 9,950 addresses), chose a hash join over a million principals
    (550 ms, and 140 ms more compiling it, the plan's cost passing jit_above_cost).
    """
    emails = PrincipalEmail.objects.alias(**_address_parts("address")).filter(
        _by_address(addresses)
    )
    sql, params = emails.values("principal_id")[: limit + 1].query.sql_with_params()
    with connection.cursor() as cursor:
        # The ids as one array literal: thousands of rows (and parameters) cost more in
        # Python than the database takes to find them.
        cursor.execute(
            "SELECT count(*), COALESCE(array_agg(principal_id), '{}')::text "  # noqa: S608
            f"FROM ({sql}) owners",
            params,
        )
        count, owners = cursor.fetchone()
    if count > limit:
        return None
    # Other tenants' addresses may be among them: the scoped list never holds their owners.
    return queryset.filter(
        Q(name__icontains=term) | Q(description__icontains=term) | _AnyOf(F("pk"), owners)
    )


class _AnyOf(Func):
    """`expression = ANY(values)` on PostgreSQL, `values` an array literal ("{1,2,3}"):
    one parameter (`IN (...)` takes a parameter each, and a statement may hold 65,535),
    behind a scalar subquery, so the planner does not see how many there are.

    Seeing 9,950 of them, it expected 30,000 rows and read the whole table in order
    rather than look them up (1.1 s, for rows that sat in 300 of its 19,000 pages); not
    seeing them, it plans a few primary key lookups, in one bitmap with the trigram
    indexes.
    """

    output_field = BooleanField()

    def __init__(self, expression, values: str):
        super().__init__(expression)
        self.values = values

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        array = f"{self.source_expressions[0].output_field.cast_db_type(connection)}[]"
        return f"{sql} = ANY((SELECT %s)::{array})", [*params, self.values]


def _by_address(addresses: list[str]) -> Q:
    by_address = Q()
    for address in addresses:
        by_address |= _address_contains(address)
    return by_address


def _address_parts(field: str) -> dict[str, Any]:
    """The aliases `_address_contains` reads, of the address `field` (on a model of its
    own, `address` is the field itself)."""
    parts = {"local_part": _split_part(field, 1), "domain_part": _split_part(field, 2)}
    return parts if field == "address" else {"address": F(field), **parts}


def _split_part(field: str, part: int) -> Func:
    return Func(F(field), Value("@"), Value(part), function="split_part", output_field=CharField())


def _no_index() -> None:
    """No index to ask (short terms on SQLite, other backends): the search walks."""
    return None


_fts_tables: dict[str, bool] = {}


def _fts_table_exists() -> bool:
    """Migration 0007 creates the FTS5 table only where SQLite has the trigram tokenizer."""
    name = str(connection.settings_dict["NAME"])
    if name not in _fts_tables:
        _fts_tables[name] = SEARCH_TABLE in connection.introspection.table_names()
    return _fts_tables[name]


def _fts_query(phrases: list[str]) -> str:
    """An FTS5 query for any of `phrases` (each a literal substring)."""
    return " OR ".join('"{}"'.format(p.replace('"', '""')) for p in dict.fromkeys(phrases))


_FTS_MATCH = f"SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH %s"  # noqa: S608


def _fts_arms(queryset: QuerySet[Principal], query: str, match: Q) -> list[QuerySet]:
    """The matches as SQLite's FTS5 trigram index finds them: principals whose name,
    description or addresses hold one of the phrases, case-insensitively.

    The index folds case beyond ASCII, where LIKE does not, and a phrase could span two
    addresses: `match` is checked on what it finds too, so every plan finds the same rows.
    """
    return [queryset.filter(Q(pk__in=RawSQL(_FTS_MATCH, [query])) & match)]  # noqa: S611


def _fts_few(query: str, limit: int) -> bool:
    """At most `limit` principals on the server match. The index streams its matches and
    stops at limit + 1; cut to one tenant's list, it would read them all first."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({_FTS_MATCH} LIMIT %s)", [query, limit + 1])  # noqa: S608
        return cursor.fetchone()[0] <= limit


def principal_get(*, actor: Principal, id_or_name: str | int) -> Principal:
    """By numeric id or by name; foreign and missing principals are the same NotFound."""
    queryset = with_relations(principal_scope(actor))
    key = str(id_or_name)
    lookup = Q(pk=int(key)) if is_id(key) else Q(name=key)
    principal = queryset.filter(lookup).first()
    if principal is None:
        raise NotFound()
    with_members([principal])
    return principal


def principal_choices(
    *, actor: Principal, tenant_id: int | None, types: Iterable[str]
) -> QuerySet[Principal]:
    """Names an editor may offer: the visible principals of one tenant, of some types."""
    return (
        principal_scope(actor)
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
    queryset = principal_scope(actor).filter(type=PrincipalType.DOMAIN)
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
    queryset = audit_scope(actor)
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
    recent = audit_scope(actor).order_by("-created_at", "-id")
    return sorted(set(recent.values_list("action", flat=True)[:AUDIT_ACTIONS_WINDOW]))
