"""Reads of mailboxes, domain aliases and catch-alls, scoped to the acting principal.

One scoping entry point per model (`mailboxes_visible`, `domain_aliases_visible`,
`catch_alls_visible`), built on mailadmin.tenancy.scope; every other read starts there.
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from apps.accounts.emails import InvalidAddress, display_domain, normalize_domain
from apps.accounts.models import Principal, PrincipalEmail
from apps.domains import selectors
from apps.domains.models import CatchAll, DomainAlias, MailboxProfile
from mailadmin.errors import NotFound
from mailadmin.tenancy import scope

MAILBOX_NOT_FOUND = "Mailbox not found"


def mailboxes_visible(actor: Principal) -> QuerySet[MailboxProfile]:
    return scope(MailboxProfile.objects.all(), actor)


def domain_aliases_visible(actor: Principal) -> QuerySet[DomainAlias]:
    return scope(DomainAlias.objects.all(), actor)


def catch_alls_visible(actor: Principal) -> QuerySet[CatchAll]:
    return scope(CatchAll.objects.all(), actor)


# --- the provisioning API's path: customer, domain, mailbox -------------------------------


def provisioning_tenant(*, actor: Principal, customer: str) -> Principal | None:
    """The tenant a `/customers/{customer}` path names (id or name): the actor's own, or
    any for a superadmin. None is the server's own domains (superadmins only, as `-`)."""
    if customer == "-" and actor.reaches_all_tenants:
        return None
    try:
        return selectors.mailserver_tenant(actor=actor, tenant=customer)
    except NotFound:
        raise NotFound(f"Customer {customer} not found") from None


def provisioning_domain(*, actor: Principal, tenant: Principal | None, name: str) -> Principal:
    """One of the tenant's domains by name (Unicode or punycode); else the spec's 404."""
    shown = (name or "").strip()
    try:
        stored = normalize_domain(shown)
    except InvalidAddress:
        raise NotFound(f"{shown} not found") from None
    domain = selectors.domains_visible(actor).filter(name=stored, tenant=tenant).first()
    if domain is None:
        raise NotFound(f"{display_domain(stored)} not found")
    return domain


# --- mailboxes ----------------------------------------------------------------------------


def _with_principal(queryset: QuerySet[MailboxProfile]) -> QuerySet[MailboxProfile]:
    emails = PrincipalEmail.objects.order_by("position").only("principal_id", "address")
    return queryset.select_related("principal").prefetch_related(
        Prefetch("principal__emails", queryset=emails)
    )


def mailbox_list(*, actor: Principal, domain: Principal, search: str = "") -> QuerySet:
    """The mailboxes of one domain by name, each with its principal and addresses (two
    queries per page, however long)."""
    queryset = mailboxes_visible(actor).filter(domain=domain)
    search = (search or "").strip().lower()[:64]
    if search:
        queryset = queryset.filter(name__startswith=search)
    return _with_principal(queryset).order_by("name")


def mailbox_get(*, actor: Principal, domain: Principal, name: str) -> MailboxProfile:
    mailbox = (
        _with_principal(mailboxes_visible(actor))
        .filter(domain=domain, name=(name or "").strip().lower())
        .first()
    )
    if mailbox is None:
        raise NotFound(MAILBOX_NOT_FOUND)
    return mailbox


def mailbox_by_id(*, actor: Principal, mailbox_id: int) -> MailboxProfile:
    mailbox = _with_principal(mailboxes_visible(actor)).filter(pk=mailbox_id).first()
    if mailbox is None:
        raise NotFound(MAILBOX_NOT_FOUND)
    return mailbox


# --- aliases and catch-all ----------------------------------------------------------------


def domain_alias_list(*, actor: Principal, domain: Principal) -> QuerySet[DomainAlias]:
    return domain_aliases_visible(actor).filter(domain=domain).order_by("alias")


def catch_all_of(*, actor: Principal, domain: Principal) -> CatchAll | None:
    return catch_alls_visible(actor).filter(domain=domain).select_related("target").first()
