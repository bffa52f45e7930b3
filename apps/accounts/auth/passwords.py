"""Changing one's own password (the console's "Change password" page).

The person proves who they are the way a login does: the current password, and the
second factor when two-factor authentication is on. Both go through the login checks, so
failures count towards the lockout: an unattended, logged-in browser cannot be used to
guess the password. The new password is checked before the second factor, so a code is
never spent on a request that fails anyway (a TOTP code works only once).
"""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from apps.accounts.auth.common import (
    MAX_PASSWORD,
    _require,
    _require_account,
    require_main_login,
)
from apps.accounts.auth.login import (
    InvalidCredentials,
    authenticate_password,
    verify_second_factor,
)
from apps.accounts.models import Principal
from apps.accounts.permissions import Perm
from mailadmin.audit import audit
from mailadmin.errors import ServiceError


def password_change(
    *,
    actor: Principal,
    current: str,
    new: str,
    code: str | None = None,
    ip: str | None = None,
) -> None:
    """Replace the actor's password; raises ServiceError naming the field at fault.

    `ip` is the client address the lockout counts failures for (the console passes it).
    A LoginLocked (429) passes through: the person is told when to try again.
    """
    _require(actor, Perm.MANAGE_PASSWORDS)
    _require_account(actor)
    require_main_login(actor)
    if not current:
        raise ServiceError("Enter your current password.", field="current")
    _check_new(actor, current=current, new=new)
    try:
        authenticate_password(identifier=actor.name, password=current, ip=ip, app_passwords=False)
    except InvalidCredentials:
        raise ServiceError("Your current password is not correct.", field="current") from None
    if actor.otp_enabled:
        if not code:
            raise ServiceError(
                "Enter the code from your authenticator app (or a recovery code).", field="code"
            )
        verify_second_factor(principal=actor, code=code, ip=ip)
    with transaction.atomic():
        actor.set_password(new)
        Principal.objects.filter(pk=actor.pk).update(password=actor.password)
        audit(actor=actor, action="password.change", obj=actor)


def _check_new(actor: Principal, *, current: str, new: str) -> None:
    if not new:
        raise ServiceError("Enter a new password.", field="new")
    if len(new) > MAX_PASSWORD:
        raise ServiceError(
            f"The new password is too long: at most {MAX_PASSWORD} characters.", field="new"
        )
    if new == current:
        raise ServiceError("The new password must differ from the current one.", field="new")
    try:
        validate_password(new, actor)
    except DjangoValidationError as exc:
        raise ServiceError(" ".join(exc.messages), field="new") from None
