"""Reads of domains, their DKIM keys and DNS check results, scoped to the acting principal.

Each model has one scoping entry point built on mailadmin.tenancy.scope (`domains_visible`,
`dkim_keys_visible`, `dns_results_visible`); every other read here starts from one of them.
Nothing here writes: a page or an API GET only reads.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import StrIndex, Substr
from django.utils.crypto import salted_hmac

from apps.accounts.emails import InvalidAddress, normalize_domain
from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
from apps.accounts.permissions import Perm
from apps.accounts.principals.selectors import principal_scope
from apps.domains import records
from apps.domains.models import DkimKey, DnsCheckResult, DomainAlias, DomainProfile
from mailadmin.converters import is_id
from mailadmin.errors import NotFound, PermissionDenied, ValidationFailed
from mailadmin.tenancy import scope

logger = logging.getLogger(__name__)

# --- the scoping entry points -------------------------------------------------------------


def domains_visible(actor: Principal) -> QuerySet[Principal]:
    """The domains the actor may see: their tenant's, or all of them for a superadmin."""
    return principal_scope(actor).filter(type=PrincipalType.DOMAIN)


def dkim_keys_visible(actor: Principal) -> QuerySet[DkimKey]:
    return scope(DkimKey.objects.all(), actor)


def dns_results_visible(actor: Principal) -> QuerySet[DnsCheckResult]:
    return scope(DnsCheckResult.objects.all(), actor)


# --- domains ------------------------------------------------------------------------------


def domain_list(*, actor: Principal, search: str = "") -> QuerySet[Principal]:
    """The actor's domains with their DNS profile, by name (one query per page)."""
    domains = domains_visible(actor).select_related("domain_profile", "tenant")
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
    queryset = domains_visible(actor).select_related("domain_profile")
    if is_id(key):
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


def domain_profile(domain: Principal) -> DomainProfile | None:
    """The domain's profile, or None before its first DNS check (reading never makes one)."""
    try:
        return domain.domain_profile  # select_related by domain_get and domain_list
    except DomainProfile.DoesNotExist:
        return None


def domains_due(*, minute: int, checked_before: datetime) -> QuerySet[Principal]:
    """The schedule's read, across tenants: domains whose id % 60 is this minute of the hour
    (so each is checked hourly and the checks spread over the hour), not checked since
    `checked_before`."""
    stale = (
        Q(domain_profile__isnull=True)
        | Q(domain_profile__dns_checked_at__isnull=True)
        | Q(domain_profile__dns_checked_at__lt=checked_before)
    )
    return (
        Principal.objects.filter(type=PrincipalType.DOMAIN)
        .alias(slot=F("id") % 60)
        .filter(stale, slot=minute % 60)
        .only("id", "name", "tenant_id")
        .order_by("id")
    )


def domain_for_schedule(*, domain_id: int) -> Principal | None:
    """A domain by id for a scheduled check, which acts for every tenant (no actor)."""
    return (
        Principal.objects.filter(pk=domain_id, type=PrincipalType.DOMAIN)
        .select_related("domain_profile")
        .first()
    )


# --- DNS records and results --------------------------------------------------------------


def verification_token(domain: Principal) -> str:
    """The ownership token: the stored one, else the one the first check will store.

    Derived from the domain id and SECRET_KEY, so the page can show it before any profile
    exists and the profile made later stores the same value.
    """
    profile = domain_profile(domain)
    if profile is not None:
        return profile.verification_token
    return salted_hmac("mailadmin.domains.verification", str(domain.pk)).hexdigest()[:32]


def _tlsa_sha256(path: str, mtime: float) -> str | None:
    """SHA-256 (hex) of the SubjectPublicKeyInfo of the first certificate in `path` (PEM):
    the data of a TLSA 3 1 1 record. Cached per (path, mtime)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(path, "rb") as handle:
        certificate = x509.load_pem_x509_certificates(handle.read())[0]
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


_tlsa_cached = functools.lru_cache(maxsize=4)(_tlsa_sha256)


def tlsa_digest() -> str | None:
    """The TLSA 3 1 1 data of the configured certificate (MAILADMIN_TLS_CERT_FILE), or None
    when none is configured or it cannot be read (then no TLSA record is published)."""
    path = getattr(settings, "MAILADMIN_TLS_CERT_FILE", None)
    if not path:
        return None
    try:
        return _tlsa_cached(str(path), os.stat(path).st_mtime)
    except (OSError, ValueError, IndexError):
        logger.warning("no TLSA record: cannot read the certificate %s", path, exc_info=True)
        return None


def record_options() -> dict:
    """The settings that shape every domain's record set (records.domain_records)."""
    return {
        "hostname": settings.MAILADMIN_HOSTNAME,
        "dmarc_report_local": settings.MAILADMIN_DMARC_REPORT_LOCALPART,
        "tlsrpt_report_local": settings.MAILADMIN_TLSRPT_REPORT_LOCALPART,
        "mta_sts_mode": settings.MAILADMIN_MTA_STS_MODE,
        "mta_sts_max_age": settings.MAILADMIN_MTA_STS_MAX_AGE,
        "tlsa_sha256": tlsa_digest(),
    }


def mta_sts_policy() -> str:
    """The MTA-STS policy every hosted domain serves (its _mta-sts id is its digest)."""
    options = record_options()
    return records.mta_sts_policy(
        mx_hosts=[options["hostname"]],
        mode=options["mta_sts_mode"],
        max_age=options["mta_sts_max_age"],
    )


def expected_records(*, domain: Principal) -> list[records.Record]:
    """What `domain` must publish: the API, the page and the DNS check all read this."""
    keys = DkimKey.objects.filter(domain=domain, state__in=DkimKey.PUBLISHED)
    return records.domain_records(
        domain=domain.name,
        verification_token=verification_token(domain),
        **record_options(),
        dkim_keys=keys.order_by("created_at", "id").only(
            "selector", "algorithm", "public_key", "state"
        ),
    )


def expected_records_many(*, domains: list[Principal]) -> list[list[records.Record]]:
    """expected_records for many domains (with domain_profile selected) in one query."""
    keys: dict[int, list[DkimKey]] = {}
    published = DkimKey.objects.filter(domain__in=domains, state__in=DkimKey.PUBLISHED)
    for key in published.order_by("created_at", "id").only(
        "domain_id", "selector", "algorithm", "public_key", "state"
    ):
        keys.setdefault(key.domain_id, []).append(key)
    options = record_options()
    return [
        records.domain_records(
            domain=domain.name,
            verification_token=verification_token(domain),
            dkim_keys=keys.get(domain.pk, []),
            **options,
        )
        for domain in domains
    ]


def alias_expected_records(*, alias_name: str, domain_name: str) -> list[records.Record]:
    """What a domain alias must publish (a zone of its own): the page, the API and the
    domain's DNS check read this."""
    return records.alias_records(
        alias=alias_name, domain=domain_name, hostname=settings.MAILADMIN_HOSTNAME
    )


def aliases_by_domain(*, domains: Iterable[Principal]) -> dict[int, list[DomainAlias]]:
    """The aliases of several domains (by domain id, by name) in one query: a batch of
    Check all costs one query for its aliases, however many domains have none."""
    found: dict[int, list[DomainAlias]] = {}
    rows = DomainAlias.objects.filter(domain_id__in=[d.pk for d in domains])
    rows = rows.order_by("alias", "id")
    for alias in rows.only("id", "alias", "domain"):
        found.setdefault(alias.domain_id, []).append(alias)
    return found


def _alias_get(actor: Principal, name: str) -> DomainAlias | None:
    """One of the actor's domain aliases by name (Unicode or punycode, any case), scoped
    through its domain exactly as domain_get scopes domains."""
    if name.strip().isdigit():  # ids name domains; an alias is asked for by name
        return None
    try:
        stored = normalize_domain(name.strip())
    except InvalidAddress:
        return None
    return (
        DomainAlias.objects.filter(alias=stored, domain__in=domains_visible(actor))
        .select_related("domain")
        .first()
    )


def dns_record_set(*, actor: Principal, name_or_id: str | int) -> tuple[str, list[records.Record]]:
    """(zone name, records) for GET /api/dns/records/{name}: one of the actor's domains, or
    one of their domain aliases (its own record set). Another tenant's alias is NotFound,
    exactly like an unknown domain."""
    try:
        domain = domain_get(actor=actor, name_or_id=name_or_id)
    except NotFound:
        alias = _alias_get(actor, str(name_or_id))
        if alias is None:
            raise
        records_ = alias_expected_records(alias_name=alias.alias, domain_name=alias.domain.name)
        return alias.alias, records_
    return domain.name, expected_records(domain=domain)


def domain_dns_records(*, actor: Principal, name_or_id: str | int) -> list[records.Record]:
    """The records one of the actor's domains or domain aliases needs
    (GET /api/dns/records/{name})."""
    if not actor.has_permission(Perm.DNS_RECORD_GET):
        raise PermissionDenied(Perm.DNS_RECORD_GET)
    return dns_record_set(actor=actor, name_or_id=name_or_id)[1]


def dns_results(*, actor: Principal, domain: Principal) -> QuerySet[DnsCheckResult]:
    """What the latest check of one domain found, record by record."""
    return dns_results_visible(actor).filter(domain=domain)


def dns_check_kind(domain_id: int) -> str:
    """The TaskRun kind of one domain's checks: the page finds its latest run by it, and
    only one runs at a time."""
    return f"dns-check:{domain_id}"


# --- DKIM keys ----------------------------------------------------------------------------


def dkim_key_list(
    *, actor: Principal, domain: Principal | None = None, active_only: bool = False
) -> QuerySet[DkimKey]:
    """Keys the actor may see (of one domain if given), newest first."""
    queryset = dkim_keys_visible(actor).select_related("domain")
    if domain is not None:
        queryset = queryset.filter(domain=domain)
    if active_only:
        queryset = queryset.filter(state=DkimKey.State.ACTIVE)
    return queryset.order_by("domain__name", "-created_at", "-id")


def dkim_key_get(*, actor: Principal, key_id: int) -> DkimKey:
    key = dkim_keys_visible(actor).select_related("domain").filter(pk=key_id).first()
    if key is None:
        raise NotFound()
    return key


def dkim_keys_of_domain(*, actor: Principal, domain: Principal) -> QuerySet[DkimKey]:
    """The domain page's keys: published ones first (by algorithm, newest first), then the
    latest retired ones."""
    return (
        dkim_keys_visible(actor)
        .filter(domain=domain)
        .defer("private_key")
        .order_by("state_changed_at")
    )


def signing_keys(domain_name: str) -> list[DkimKey]:
    """The keys SMTP submission signs mail from `domain_name` with (Unicode or punycode,
    any case): the active ones, at most one RSA and one Ed25519. Across tenants: the mail
    flow has no actor, the sender's domain decides. Empty for an unknown domain."""
    try:
        name = normalize_domain(domain_name)
    except InvalidAddress:
        return []
    return list(
        DkimKey.objects.filter(
            domain__type=PrincipalType.DOMAIN,
            domain__name=name,
            state=DkimKey.State.ACTIVE,
        )
        .select_related("domain")
        .order_by("algorithm")
    )


def dkim_keys_pending() -> QuerySet[DkimKey]:
    """The rotation task's read, across tenants: keys waiting for their DNS record."""
    return (
        DkimKey.objects.filter(state=DkimKey.State.PENDING)
        .select_related("domain")
        .defer("private_key")
        .order_by("id")
    )


def dkim_keys_expired(*, before: datetime) -> list[int]:
    """Ids of the retiring keys whose grace period ended (retiring since before `before`)."""
    return list(
        DkimKey.objects.filter(state=DkimKey.State.RETIRING, state_changed_at__lt=before)
        .order_by("id")
        .values_list("id", flat=True)
    )


# --- the domains API (domains-api.txt) ----------------------------------------------------

# order_by values of the domains API -> the ordering they mean (id breaks ties).
DOMAIN_ORDERS = {
    "name_asc": ("name", "id"),
    "name_desc": ("-name", "-id"),
    "created_at_asc": ("created_at", "id"),
    "created_at_desc": ("-created_at", "-id"),
}


def domain_page_list(
    *, actor: Principal, search: str = "", order_by: str = "name_asc", tenant_id: int | None = None
) -> QuerySet[Principal]:
    """The actor's domains for the domains API: searched (Unicode or punycode), in one of
    DOMAIN_ORDERS, optionally one tenant's only (another tenant's asks yield nothing)."""
    domains = domain_list(actor=actor, search=search)
    if tenant_id is not None:
        domains = domains.filter(tenant_id=tenant_id)
    return domains.order_by(*DOMAIN_ORDERS[order_by])


def _domain_part() -> Substr:
    return Substr("address", StrIndex("address", Value("@")) + 1)


def mailbox_counts(names: Iterable[str]) -> dict[str, int]:
    """How many principals receive mail at each domain (any address on it), in one query
    for a whole page of domains."""
    names = list(names)
    if not names:
        return {}
    rows = (
        PrincipalEmail.objects.annotate(domain=_domain_part())
        .filter(domain__in=names)
        .values("domain")
        .annotate(count=Count("principal_id", distinct=True))
        .values_list("domain", "count")
    )
    counts = dict.fromkeys(names, 0)
    counts.update(dict(rows))
    return counts


def domain_mailboxes(domain: Principal) -> list[tuple[Principal, list[str]]]:
    """The principals with an address on `domain`, each with those addresses (what deleting
    the domain would take with it)."""
    emails = (
        PrincipalEmail.objects.annotate(domain=_domain_part())
        .filter(domain=domain.name)
        .select_related("principal")
        .order_by("principal__name", "position")
    )
    found: dict[int, tuple[Principal, list[str]]] = {}
    for email in emails:
        found.setdefault(email.principal_id, (email.principal, []))[1].append(email.address)
    return list(found.values())


# --- the tenant mail server record (tenant-mailserver-api.txt) ----------------------------


def mailserver_tenant(*, actor: Principal, tenant: str = "") -> Principal:
    """The tenant whose mail server record is asked for: the actor's own, or for a
    superadmin (who has none) the one `tenant` names by id or name. Another tenant is
    NotFound, like a missing one."""
    key = (tenant or "").strip()
    if not actor.reaches_all_tenants:
        if actor.tenant_id is None:
            raise NotFound()
        if key and key not in {str(actor.tenant_id), actor.tenant.name}:
            raise NotFound()
        return actor.tenant
    if not key:
        raise ValidationFailed("Missing required field: tenant", field="tenant")
    tenants = Principal.objects.filter(type=PrincipalType.TENANT)
    found = tenants.filter(pk=int(key)).first() if is_id(key) else tenants.filter(name=key).first()
    if found is None:
        raise NotFound()
    return found


def mailserver_domain(*, tenant: Principal, domain: str = "") -> Principal | None:
    """The domain whose DNS the record shows: the one named (of this tenant), else the
    tenant's first registered; None when the tenant has no domain yet."""
    domains = Principal.objects.filter(type=PrincipalType.DOMAIN, tenant=tenant)
    key = (domain or "").strip()
    if not key:
        return domains.order_by("created_at", "id").first()
    if is_id(key):
        found = domains.filter(pk=int(key)).first()
    else:
        try:
            found = domains.filter(name=normalize_domain(key)).first()
        except InvalidAddress:
            found = None
    if found is None:
        raise NotFound()
    return found


def verified_records(domain: Principal) -> set[tuple[str, str, str]]:
    """(type, name, content) of each record the latest check found as expected. A record
    whose expected value changed since (a new DKIM key) is not verified until rechecked."""
    rows = DnsCheckResult.objects.filter(domain=domain, status=DnsCheckResult.Status.OK)
    return set(rows.values_list("record_type", "name", "expected"))


def domain_hosted(name: str) -> Principal | None:
    """A domain hosted here, across tenants, for the public client configuration
    endpoints: they answer for hosted domains only and say nothing else about them."""
    return Principal.objects.filter(type=PrincipalType.DOMAIN, name=name).only("id", "name").first()
