"""Writes to a domain's DKIM keys and profile. Private keys are never logged or returned."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import Perm
from apps.domains import dkim, records
from apps.domains.models import DkimKey, DomainProfile
from mailadmin.audit import audit
from mailadmin.errors import NotFound, PermissionDenied, ValidationFailed


def _require(actor: Principal, permission: str) -> None:
    if not actor.has_permission(permission):
        raise PermissionDenied(permission)


def _require_visible(actor: Principal, domain: Principal) -> None:
    """The same rule as mailadmin.tenancy.scope, for an object already loaded."""
    if domain.type != PrincipalType.DOMAIN:
        raise NotFound()
    if not actor.is_superuser and (actor.tenant_id is None or domain.tenant_id != actor.tenant_id):
        raise NotFound()


def domain_profile_ensure(*, domain: Principal) -> DomainProfile:
    """The domain's profile, made on first use (it holds the ownership token)."""
    try:
        return domain.domain_profile  # cached by select_related or an earlier call
    except DomainProfile.DoesNotExist:
        return _domain_profile_create(domain=domain)


@transaction.atomic
def _domain_profile_create(*, domain: Principal) -> DomainProfile:
    profile, created = DomainProfile.objects.get_or_create(
        domain=domain, defaults={"tenant_id": domain.tenant_id}
    )
    if created:
        audit(
            actor=None,
            action="domainprofile.create",
            obj=profile,
            object_repr=domain.name,
            tenant_id=domain.tenant_id,
        )
    domain.domain_profile = profile  # cache it: later calls need no query
    return profile


@transaction.atomic
def dkim_key_create(
    *, actor: Principal, domain: Principal, algorithm: str, selector: str | None = None
) -> DkimKey:
    _require(actor, Perm.DKIM_SIGNATURE_CREATE)
    _require_visible(actor, domain)
    if algorithm not in dkim.ALGORITHMS:
        raise ValidationFailed(
            f"Invalid value for field algorithm: {algorithm} is not one of Ed25519, Rsa.",
            field="algorithm",
        )
    # Lock the domain row: two concurrent creates pick different default selectors.
    Principal.objects.select_for_update().filter(pk=domain.pk).first()
    taken = set(DkimKey.objects.filter(domain=domain).values_list("selector", flat=True))
    if selector is None or selector == "":
        selector = dkim.default_selector(algorithm, today=timezone.now().date(), taken=taken)
    elif not dkim.is_valid_selector(selector):
        raise ValidationFailed(
            f"Invalid value for field selector: '{selector}' is not a DNS label "
            "(1-63 letters, digits or hyphens, not starting or ending with a hyphen).",
            field="selector",
        )
    if selector.lower() in {s.lower() for s in taken}:
        raise ValidationFailed(
            f"The selector {selector} is already used by {domain.name}.", field="selector"
        )
    pair = dkim.generate(algorithm)
    try:
        with transaction.atomic():
            key = DkimKey.objects.create(
                domain=domain,
                tenant_id=domain.tenant_id,
                selector=selector,
                algorithm=algorithm,
                private_key=pair.private_pem,
                public_key=pair.public_key,
            )
    except IntegrityError:
        raise ValidationFailed(
            f"The selector {selector} is already used by {domain.name}.", field="selector"
        ) from None
    audit(
        actor=actor,
        action="dkim.create",
        obj=key,
        object_repr=f"{selector}._domainkey.{domain.name}",
        tenant_id=domain.tenant_id,
        changes={"domain": domain.name, "selector": selector, "algorithm": algorithm},
    )
    return key


@transaction.atomic
def dkim_key_delete(*, actor: Principal, key: DkimKey) -> None:
    _require(actor, Perm.DKIM_SIGNATURE_CREATE)
    _require_visible(actor, key.domain)
    object_id = str(key.pk)
    domain_name = key.domain.name
    changes = {"domain": domain_name, "selector": key.selector, "algorithm": key.algorithm}
    key.delete()
    audit(
        actor=actor,
        action="dkim.delete",
        object_type="dkimkey",
        object_id=object_id,
        object_repr=f"{changes['selector']}._domainkey.{domain_name}",
        tenant_id=key.tenant_id,
        changes=changes,
    )


def domain_dns_records(*, actor: Principal, domain: Principal) -> list[records.Record]:
    """The records `domain` needs; creates its profile (and token) on first use."""
    _require(actor, Perm.DNS_RECORD_GET)
    _require_visible(actor, domain)
    return expected_records(domain=domain)


def expected_records(*, domain: Principal) -> list[records.Record]:
    """What `domain` must publish: the API, the page and the DNS check all read this."""
    profile = domain_profile_ensure(domain=domain)
    keys = DkimKey.objects.filter(domain=domain, is_active=True).order_by("created_at", "id")
    return records.domain_records(
        domain=domain.name,
        hostname=settings.MAILADMIN_HOSTNAME,
        verification_token=profile.verification_token,
        dkim_keys=keys.only("selector", "algorithm", "public_key"),
    )
