"""Bearer tokens: random, shown once, stored as SHA-256 (they carry full entropy)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from apps.accounts.auth.common import AuthMethod
from apps.accounts.models import AccessToken, Principal, PrincipalType

LAST_USED_GRANULARITY = timedelta(minutes=1)
MAX_SECRET = 256


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return f"ma_{secrets.token_urlsafe(32)}"


def token_issue(
    *,
    principal: Principal,
    kind: str,
    name: str = "",
    ttl: timedelta | None = None,
    secret: str | None = None,
    manages_credentials: bool = False,
) -> tuple[AccessToken, str]:
    """Create a token and return it with its secret, which is never stored.

    `secret` is generated unless the caller brings one (an API key made through
    POST /api/principal with `secrets`). `manages_credentials`: see AccessToken.
    """
    secret = secret or new_secret()
    row = AccessToken.objects.create(
        principal=principal,
        kind=kind,
        name=name,
        token_hash=hash_token(secret),
        expires_at=timezone.now() + ttl if ttl else None,
        manages_credentials=manages_credentials,
    )
    return row, secret


def principal_for_token(secret: str) -> Principal | None:
    """Who a bearer secret stands for, checked now: an API key also needs a live owner.

    The principal comes back with `authenticated_by` set, which decides whether it may
    change credentials (see common.require_main_login).
    """
    if len(secret) > MAX_SECRET:
        return None
    row = (
        AccessToken.objects.select_related("principal", "principal__created_by")
        .filter(token_hash=hash_token(secret), revoked_at__isnull=True)
        .first()
    )
    now = timezone.now()
    if row is None or (row.expires_at and row.expires_at <= now):
        return None
    principal = row.principal
    if not principal.is_active:
        return None
    if principal.type == PrincipalType.API_KEY and principal.key_owner is None:
        return None  # the owner was deleted or disabled: the key is dead with it
    if principal.type == PrincipalType.API_KEY or row.kind == AccessToken.Kind.API_KEY:
        principal.authenticated_by = AuthMethod.API_KEY
    elif row.kind == AccessToken.Kind.OAUTH and row.manages_credentials:
        principal.authenticated_by = AuthMethod.OAUTH
    else:
        principal.authenticated_by = AuthMethod.OAUTH_LIMITED
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        AccessToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return principal
