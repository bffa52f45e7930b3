"""OAuth: authorization codes and their exchange for bearer tokens."""

from __future__ import annotations

import secrets
from datetime import timedelta
from importlib import metadata

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.auth import tokens
from apps.accounts.auth.common import CREDENTIAL_METHODS
from apps.accounts.models import (
    AccessToken,
    OAuthCode,
    Principal,
)
from mailadmin.audit import audit
from mailadmin.errors import ServiceError

OAUTH_CODE_TTL = timedelta(minutes=5)
OAUTH_TOKEN_TTL = timedelta(hours=1)


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: `error` is the code, `description` optional."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.description = description


def server_version() -> str:
    try:
        return metadata.version("mailadmin")
    except metadata.PackageNotFoundError:
        return settings.SPECTACULAR_SETTINGS.get("VERSION", "0.1.0")


def oauth_code_issue(*, actor: Principal, client_id: str, redirect_uri: str) -> str:
    """A single-use authorization code for the authenticated actor (stored hashed).

    The token it buys may change credentials only if the actor could: a code asked for
    with an app password (or an API key) gives a token that cannot either.
    """
    code = secrets.token_urlsafe(30)  # 40 characters, as in the spec's example
    now = timezone.now()
    OAuthCode.objects.create(
        principal=actor,
        code_hash=tokens.hash_token(code),
        client_id=client_id[:255],
        redirect_uri=redirect_uri[:1024],
        created_at=now,
        expires_at=now + OAUTH_CODE_TTL,
        manages_credentials=actor.authenticated_by in CREDENTIAL_METHODS,
    )
    return code


def oauth_token_exchange(*, code: str, client_id: str, redirect_uri: str) -> tuple[str, int]:
    """Trade a code for a bearer token (RFC 6749 §4.1.3): (token, expires_in seconds)."""
    if not code or len(code) > 256:
        raise OAuthError("invalid_grant")
    row = OAuthCode.objects.filter(code_hash=tokens.hash_token(code)).first()
    if row is None:
        raise OAuthError("invalid_grant")
    now = timezone.now()
    if row.used_at is not None:
        # A replayed code: revoke what was issued from it (RFC 6749 §4.1.2).
        AccessToken.objects.filter(
            principal_id=row.principal_id, name__startswith=f"oauth:{row.pk}:"
        ).update(revoked_at=now)
        raise OAuthError("invalid_grant", "The code has already been used.")
    if row.expires_at <= now:
        raise OAuthError("invalid_grant", "The code has expired.")
    if (client_id or "") != row.client_id:
        raise OAuthError("invalid_grant", "The code was issued to another client.")
    if row.redirect_uri and (redirect_uri or "") != row.redirect_uri:
        raise OAuthError("invalid_grant", "The redirect_uri does not match.")
    with transaction.atomic():
        claimed = OAuthCode.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now)
        if not claimed:
            raise OAuthError("invalid_grant", "The code has already been used.")
        principal = Principal.objects.get(pk=row.principal_id)
        if not principal.is_active:
            raise OAuthError("invalid_grant")
        _, secret = tokens.token_issue(
            principal=principal,
            kind=AccessToken.Kind.OAUTH,
            name=f"oauth:{row.pk}:{row.client_id}"[:255],
            ttl=OAUTH_TOKEN_TTL,
            manages_credentials=row.manages_credentials,
        )
        audit(
            actor=principal,
            action="oauth-token.issue",
            obj=principal,
            changes={"client_id": row.client_id},
        )
    return secret, int(OAUTH_TOKEN_TTL.total_seconds())


def oauth_token_revoke(*, actor: Principal, secret: str) -> None:
    """Revoke the OAuth bearer token the actor is calling with."""
    updated = AccessToken.objects.filter(
        principal=actor,
        kind=AccessToken.Kind.OAUTH,
        token_hash=tokens.hash_token(secret),
        revoked_at__isnull=True,
    ).update(revoked_at=timezone.now())
    if not updated:
        raise ServiceError(
            "Only an OAuth bearer token can be revoked here; API keys are revoked with "
            "DELETE /api/account/api-keys/{id}."
        )
    audit(actor=actor, action="oauth-token.revoke", obj=actor)
