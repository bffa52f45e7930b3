"""Periodic clean-up of lockout rows, OAuth codes and expired OAuth tokens."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.accounts.auth.login import throttle_purge
from apps.accounts.models import (
    AccessToken,
    OAuthCode,
)

EXPIRED_KEPT_FOR = timedelta(days=1)


def auth_housekeeping() -> dict[str, int]:
    """Delete lockout rows that no longer count, and OAuth codes and tokens long expired.

    API keys are kept when revoked or expired: their rows carry the audit trail's names.
    """
    cutoff = timezone.now() - EXPIRED_KEPT_FOR
    codes = OAuthCode.objects.filter(expires_at__lt=cutoff).delete()[0]
    tokens = AccessToken.objects.filter(
        kind=AccessToken.Kind.OAUTH, expires_at__lt=cutoff
    ).delete()[0]
    return {"throttles": throttle_purge(), "oauth_codes": codes, "oauth_tokens": tokens}
