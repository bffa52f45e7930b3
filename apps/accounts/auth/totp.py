"""Turning two-factor authentication (TOTP + recovery codes) on and off."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.auth import twofactor
from apps.accounts.auth.common import _require, _require_account, require_main_login
from apps.accounts.models import (
    LoginThrottle,
    Principal,
)
from apps.accounts.permissions import Perm
from mailadmin.audit import audit
from mailadmin.errors import ServiceError


@transaction.atomic
def totp_enable(*, actor: Principal, secret: str, code: str | None) -> list[str]:
    """Turn on TOTP with `secret`; from the console a current `code` proves the app has it.

    Returns new recovery codes (shown once). The API's enableOtpAuth passes code=None: the
    client proved nothing, as in the management API, and gets no recovery codes.
    """
    _require(actor, Perm.MANAGE_PASSWORDS)
    _require_account(actor)
    require_main_login(actor)
    if code is not None and not twofactor.verify_code(secret, code):
        raise ServiceError("The code is not valid. Check the time on your device.", field="code")
    Principal.objects.filter(pk=actor.pk).update(totp_secret=secret, otp_enabled=True)
    actor.totp_secret, actor.otp_enabled = secret, True
    LoginThrottle.objects.filter(key=f"totp-step:{actor.pk}").delete()
    codes = twofactor.replace_recovery_codes(actor) if code is not None else []
    audit(actor=actor, action="otp.enable", obj=actor)
    return codes


@transaction.atomic
def totp_disable(*, actor: Principal) -> None:
    """Turn off TOTP (the console confirms the current password first)."""
    _require(actor, Perm.MANAGE_PASSWORDS)
    _require_account(actor)
    require_main_login(actor)
    Principal.objects.filter(pk=actor.pk).update(totp_secret="", otp_enabled=False)
    actor.totp_secret, actor.otp_enabled = "", False
    actor.recovery_codes.all().delete()
    LoginThrottle.objects.filter(key=f"totp-step:{actor.pk}").delete()
    audit(actor=actor, action="otp.disable", obj=actor)


@transaction.atomic
def recovery_codes_regenerate(*, actor: Principal) -> list[str]:
    _require(actor, Perm.MANAGE_PASSWORDS)
    _require_account(actor)
    require_main_login(actor)
    if not actor.otp_enabled:
        raise ServiceError("Turn on two-factor authentication first.")
    codes = twofactor.replace_recovery_codes(actor)
    audit(actor=actor, action="recovery-codes.regenerate", obj=actor)
    return codes
