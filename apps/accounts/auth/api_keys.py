"""API keys: apiKey principals whose secret is a bearer token."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from apps.accounts.auth import tokens
from apps.accounts.auth.common import _require
from apps.accounts.models import (
    AccessToken,
    Principal,
    PrincipalType,
)
from apps.accounts.names import name_problem
from apps.accounts.permissions import ALL_PERMISSIONS, Perm
from mailadmin.audit import audit
from mailadmin.errors import NotFound, ServiceError
from mailadmin.tenancy import scope


def api_key_create(
    *,
    actor: Principal,
    name: str,
    permissions: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[Principal, str]:
    """An apiKey principal in the actor's tenant and its secret (returned once, stored hashed).

    `permissions` must be a subset of the actor's effective permissions; None grants all
    of them (a snapshot: later changes to the creator do not widen the key).
    """
    _require(actor, Perm.API_KEY_CREATE)
    if (problem := name_problem(name)) is not None:
        raise ServiceError(problem, field="name")
    if permissions is None:
        granted = sorted(actor.permissions)
    else:
        granted = []
        for permission in permissions:
            if permission not in ALL_PERMISSIONS:
                raise ServiceError(f"Unknown permission: {permission}", field="permissions")
            if permission not in actor.permissions:
                raise ServiceError(
                    f"You cannot grant the permission '{permission}': you do not have it.",
                    field="permissions",
                )
            if permission not in granted:
                granted.append(permission)
        granted.sort()
    if expires_at is not None:
        if timezone.is_naive(expires_at):
            expires_at = timezone.make_aware(expires_at)
        if expires_at <= timezone.now():
            raise ServiceError("The expiry must be in the future.", field="expiresAt")
    try:
        with transaction.atomic():
            key = Principal(
                type=PrincipalType.API_KEY,
                name=name,
                tenant_id=actor.tenant_id,
                enabled_permissions=granted,
                created_by=actor if actor.pk else None,
            )
            key.set_unusable_password()
            key.save()
            row, secret = tokens.token_issue(
                principal=key, kind=AccessToken.Kind.API_KEY, name=name
            )
            if expires_at is not None:
                row.expires_at = expires_at
                row.save(update_fields=["expires_at"])
            audit(
                actor=actor,
                action="api-key.create",
                obj=key,
                tenant_id=key.tenant_id,
                changes={
                    "name": name,
                    "permissions": granted,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
    except IntegrityError:
        raise ServiceError(f"A principal named '{name}' already exists.", field="name") from None
    return key, secret


def api_key_list(*, actor: Principal) -> QuerySet[Principal]:
    """The API keys the actor may see (its tenant's), with last use and expiry annotated."""
    _require(actor, Perm.API_KEY_LIST)
    keys = Principal.objects.filter(type=PrincipalType.API_KEY)
    return (
        scope(keys, actor)
        .select_related("created_by", "tenant")
        .annotate(last_used_at=Max("tokens__last_used_at"), expires_at=Max("tokens__expires_at"))
        .order_by("-created_at", "-pk")
    )


def api_key_get(*, actor: Principal, key_id) -> Principal:
    keys = scope(Principal.objects.filter(type=PrincipalType.API_KEY), actor)
    try:
        return keys.get(pk=int(key_id))
    except (Principal.DoesNotExist, TypeError, ValueError):
        raise NotFound() from None


@transaction.atomic
def api_key_revoke(*, actor: Principal, key) -> Principal:
    """Revoke a key of the actor's tenant (another tenant's: NotFound, not Forbidden)."""
    _require(actor, Perm.API_KEY_DELETE)
    key = api_key_get(actor=actor, key_id=key.pk if isinstance(key, Principal) else key)
    now = timezone.now()
    AccessToken.objects.filter(principal=key, revoked_at__isnull=True).update(revoked_at=now)
    if key.is_active:
        Principal.objects.filter(pk=key.pk).update(is_active=False)
        key.is_active = False
        audit(actor=actor, action="api-key.revoke", obj=key, tenant_id=key.tenant_id)
    return key
