"""API keys: apiKey principals whose secret is a bearer token, acting for their owner.

A key has no power of its own. Its owner is the account that made it (`created_by`), and
at every request the key may do what the owner may do *then*, narrowed by the key's own
list (`enabled_permissions`, or every permission with `all_owner_permissions`), within the
owner's reach: a tenant admin's key sees its tenant, a superadmin's key every tenant. A key
whose owner is disabled or deleted does not authenticate. Revoking keeps the row (the audit
log names it) and makes it unusable for good.

Both ways of making a key, POST /api/account/api-keys (and the console) and POST
/api/principal with type apiKey, end in `api_key_create`; deleting a key through either
API revokes it.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from apps.accounts.auth import tokens
from apps.accounts.auth.common import _require, require_main_login
from apps.accounts.models import (
    AccessToken,
    Principal,
    PrincipalType,
)
from apps.accounts.names import foreign_domain_problem, name_problem
from apps.accounts.permissions import ALL_PERMISSIONS, Perm
from mailadmin.audit import audit
from mailadmin.errors import NotFound, ServiceError
from mailadmin.tenancy import scope

MIN_SECRET = 32
API_KEY_STATUSES = ("active", "revoked", "expired", "owner-disabled", "owner-deleted")


def api_key_create(
    *,
    actor: Principal,
    name: str,
    permissions: list[str] | None = None,
    expires_at: datetime | None = None,
    description: str = "",
    secret: str | None = None,
) -> tuple[Principal, str]:
    """A key owned by the actor, in the actor's tenant, and its secret (returned once,
    stored hashed; generated unless `secret` brings one of at least MIN_SECRET characters).

    `permissions` narrows the key to those the actor holds now; None means all of the
    owner's, whatever they are when the key is used.
    """
    _require(actor, Perm.API_KEY_CREATE)
    require_main_login(actor)
    if actor.type != PrincipalType.INDIVIDUAL or actor.pk is None:
        raise ServiceError("Only accounts can own API keys.")
    problem = name_problem(name) or foreign_domain_problem(name, actor.tenant_id)
    if problem is not None:
        raise ServiceError(problem, field="name")
    if not isinstance(description, str) or len(description) > 1024:
        raise ServiceError(
            "Invalid value for field description: at most 1024 characters.", field="description"
        )
    granted = _granted(actor, permissions)
    if secret is not None and not (
        isinstance(secret, str) and MIN_SECRET <= len(secret) <= tokens.MAX_SECRET
    ):
        raise ServiceError(
            f"Invalid value for field secrets: an API key's secret needs {MIN_SECRET} to "
            f"{tokens.MAX_SECRET} characters.",
            field="secrets",
        )
    if expires_at is not None:
        if timezone.is_naive(expires_at):
            expires_at = timezone.make_aware(expires_at)
        if expires_at <= timezone.now():
            raise ServiceError("The expiry must be in the future.", field="expiresAt")
    taken = f"The name '{name}' is already taken."
    if Principal.objects.filter(name__iexact=name).exists():
        raise ServiceError(taken, field="name")
    try:
        with transaction.atomic():
            key = Principal(
                type=PrincipalType.API_KEY,
                name=name,
                description=description.strip(),
                tenant_id=actor.tenant_id,
                enabled_permissions=granted or [],
                all_owner_permissions=granted is None,
                created_by=actor,
            )
            key.set_unusable_password()
            key.save()
            row, secret = tokens.token_issue(
                principal=key, kind=AccessToken.Kind.API_KEY, name=name, secret=secret
            )
            if expires_at is not None:
                row.expires_at = expires_at
                row.save(update_fields=["expires_at"])
            key.expires_at, key.last_used_at = expires_at, None  # as api_key_list annotates
            audit(
                actor=actor,
                action="api-key.create",
                obj=key,
                tenant_id=key.tenant_id,
                changes={
                    "name": name,
                    "owner": actor.name,
                    "permissions": "all of the owner's" if granted is None else granted,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
    except IntegrityError:
        raise ServiceError(taken, field="name") from None
    return key, secret


def _granted(actor: Principal, permissions: list[str] | None) -> list[str] | None:
    """The key's own list, sorted; each one the actor holds (None: all of the owner's)."""
    if permissions is None:
        return None
    granted: set[str] = set()
    for permission in permissions:
        if permission not in ALL_PERMISSIONS:
            raise ServiceError(f"Unknown permission: {permission}", field="permissions")
        if not actor.has_permission(permission):
            raise ServiceError(
                f"You cannot grant the permission '{permission}': you do not have it.",
                field="permissions",
            )
        granted.add(permission)
    return sorted(granted)


def api_key_list(*, actor: Principal) -> QuerySet[Principal]:
    """The API keys the actor may see (its reach's), with last use and expiry annotated
    and what rendering their state and effective permissions reads."""
    _require(actor, Perm.API_KEY_LIST)
    keys = Principal.objects.filter(type=PrincipalType.API_KEY)
    return (
        scope(keys, actor)
        .select_related("created_by", "tenant")
        .prefetch_related("roles", "created_by__roles")
        .annotate(last_used_at=Max("tokens__last_used_at"), expires_at=Max("tokens__expires_at"))
        .order_by("-created_at", "-pk")
    )


def api_key_get(*, actor: Principal, key_id) -> Principal:
    keys = scope(Principal.objects.filter(type=PrincipalType.API_KEY), actor)
    try:
        return keys.get(pk=int(key_id))
    except (Principal.DoesNotExist, TypeError, ValueError, OverflowError):
        raise NotFound() from None


def api_key_status(key: Principal) -> str:
    """active, revoked, expired, owner-disabled or owner-deleted (a listed key: its
    `expires_at` is annotated by api_key_list)."""
    if not key.is_active:
        return "revoked"
    expires_at = getattr(key, "expires_at", None)
    if expires_at is not None and expires_at <= timezone.now():
        return "expired"
    if key.created_by_id is None:
        return "owner-deleted"
    if key.key_owner is None:
        return "owner-disabled"
    return "active"


@transaction.atomic
def api_key_revoke(*, actor: Principal, key) -> Principal:
    """Revoke a key within the actor's reach (beyond it: NotFound, not Forbidden)."""
    _require(actor, Perm.API_KEY_DELETE)
    require_main_login(actor)
    key = api_key_get(actor=actor, key_id=key.pk if isinstance(key, Principal) else key)
    if _revoke(key):
        audit(actor=actor, action="api-key.revoke", obj=key, tenant_id=key.tenant_id)
    return key


def api_keys_revoke_owned(*, actor: Principal, owner: Principal) -> int:
    """Revoke every key of an owner about to be deleted (they would die with it anyway:
    this records it). Called inside the deleting service's transaction."""
    revoked = 0
    for key in Principal.objects.filter(type=PrincipalType.API_KEY, created_by=owner):
        if _revoke(key):
            revoked += 1
            audit(
                actor=actor,
                action="api-key.revoke",
                obj=key,
                tenant_id=key.tenant_id,
                changes={"reason": f"owner {owner.name} deleted"},
            )
    return revoked


def _revoke(key: Principal) -> bool:
    """Mark the key and its tokens unusable; False if it already was."""
    now = timezone.now()
    AccessToken.objects.filter(principal=key, revoked_at__isnull=True).update(revoked_at=now)
    if not key.is_active:
        return False
    Principal.objects.filter(pk=key.pk).update(is_active=False)
    key.is_active = False
    return True
