"""Bearer tokens: random, shown once, stored as SHA-256 (they carry full entropy)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import AccessToken, Principal

LAST_USED_GRANULARITY = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_issue(
    *, principal: Principal, kind: str, name: str = "", ttl: timedelta | None = None
) -> tuple[AccessToken, str]:
    """Create a token and return it with its secret, which is never stored."""
    secret = f"ma_{secrets.token_urlsafe(32)}"
    row = AccessToken.objects.create(
        principal=principal,
        kind=kind,
        name=name,
        token_hash=hash_token(secret),
        expires_at=timezone.now() + ttl if ttl else None,
    )
    return row, secret


def principal_for_token(secret: str) -> Principal | None:
    if len(secret) > 256:
        return None
    row = (
        AccessToken.objects.select_related("principal")
        .filter(token_hash=hash_token(secret), revoked_at__isnull=True)
        .first()
    )
    now = timezone.now()
    if row is None or (row.expires_at and row.expires_at <= now):
        return None
    if not row.principal.is_active:
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        AccessToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.principal
