"""Password checks and lockout.

Every interface that takes a password (console login, HTTP Basic, later SMTP/IMAP AUTH)
goes through `authenticate_password()`, so lockout, imported-hash upgrades and app
passwords behave the same everywhere. No audit row ever holds a password or code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone

from apps.accounts.auth import twofactor
from apps.accounts.auth.app_passwords import verify_app_password
from apps.accounts.auth.common import MAX_IDENTIFIER, MAX_PASSWORD
from apps.accounts.auth.hashers import to_django_encoded
from apps.accounts.emails import InvalidAddress, normalize_address
from apps.accounts.models import (
    LOGIN_TYPES,
    LoginThrottle,
    Principal,
)
from mailadmin.audit import audit
from mailadmin.errors import ServiceError


class LoginLocked(ServiceError):
    status = 429
    title = "Too Many Requests"

    def __init__(self, seconds: float) -> None:
        minutes = max(1, math.ceil(seconds / 60))
        unit = "minute" if minutes == 1 else "minutes"
        super().__init__(f"Too many failed logins. Try again in {minutes} {unit}.")
        self.retry_after = max(1, math.ceil(seconds))


class InvalidCredentials(ServiceError):
    status = 401
    title = "Unauthorized"

    def __init__(self) -> None:
        super().__init__("Invalid username or password.")


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int
    window: timedelta
    lock: timedelta


def _policy(key: str) -> ThrottlePolicy:
    """Per account 5 failures in 15 min lock it for 15 min; per IP 20 (NAT is shared).

    Overridable with MAILADMIN_LOGIN_LOCKOUT = {"account": (5, 900, 900), "ip": (...)}
    (failures, window seconds, lock seconds).
    """
    defaults = {"account": (5, 900, 900), "ip": (20, 900, 900)}
    configured = {**defaults, **getattr(settings, "MAILADMIN_LOGIN_LOCKOUT", {})}
    failures, window, lock = configured[key.split(":", 1)[0]]
    return ThrottlePolicy(failures, timedelta(seconds=window), timedelta(seconds=lock))


def throttle_keys(*, identifier: str, principal: Principal | None, ip: str | None) -> list[str]:
    """`account:<name>` (the principal's name, so name and address logins add up) and
    `ip:<address>`. Unknown names are counted too, so lockout tells nobody which exist."""
    account = principal.name if principal is not None else identifier.strip().lower()
    keys = [f"account:{account[:MAX_IDENTIFIER]}"]
    if ip:
        keys.append(f"ip:{ip}")
    return keys


def throttle_check(keys: list[str]) -> None:
    now = timezone.now()
    locked = LoginThrottle.objects.filter(key__in=keys, locked_until__gt=now)
    until = max((row.locked_until for row in locked), default=None)
    if until is not None:
        raise LoginLocked((until - now).total_seconds())


def throttle_fail(keys: list[str]) -> None:
    """Count one failure per key; the one that reaches its limit locks."""
    now = timezone.now()
    with transaction.atomic():
        for key in keys:
            policy = _policy(key)
            row, _ = LoginThrottle.objects.select_for_update().get_or_create(
                key=key, defaults={"failures": 0, "first_failure_at": now}
            )
            lock_over = row.locked_until is not None and row.locked_until <= now
            if lock_over or now - row.first_failure_at > policy.window:
                row.failures, row.first_failure_at, row.locked_until = 0, now, None
            row.failures += 1
            if row.failures >= policy.max_failures:
                row.locked_until = now + policy.lock
            row.save(update_fields=["failures", "first_failure_at", "locked_until"])


def throttle_clear(key: str) -> None:
    LoginThrottle.objects.filter(key=key).delete()


def throttle_purge() -> int:
    """Delete rows no longer counting (for a periodic task)."""
    longest = max(_policy("account:").window, _policy("ip:").window)
    now = timezone.now()
    stale = LoginThrottle.objects.filter(
        first_failure_at__lt=now - longest, key__regex=r"^(account|ip):"
    ).exclude(locked_until__gt=now)
    return stale.delete()[0]


def find_login_principal(identifier: str) -> Principal | None:
    """An account by its name, else by one of its e-mail addresses (stored normalized)."""
    identifier = (identifier or "").strip()
    if not identifier or len(identifier) > MAX_IDENTIFIER:
        return None
    candidates = Principal.objects.filter(type__in=LOGIN_TYPES)
    principal = candidates.filter(name=identifier).first()
    if principal is None and "@" in identifier:
        try:
            address = normalize_address(identifier)
        except InvalidAddress:
            return None
        principal = candidates.filter(emails__address=address).first()
    return principal


def verify_account_password(principal: Principal, password: str) -> bool:
    """Check the account password; an imported or outdated hash is replaced by Argon2."""

    def upgrade(raw: str) -> None:
        principal.set_password(raw)
        Principal.objects.filter(pk=principal.pk).update(password=principal.password)

    return check_password(password, to_django_encoded(principal.password), upgrade)


def authenticate_password(
    *, identifier: str, password: str, ip: str | None, app_passwords: bool
) -> Principal:
    """Who this name/address + password is, or LoginLocked / InvalidCredentials.

    `app_passwords=False` (console): the account password only; the caller asks for the
    TOTP code next if 2FA is on and calls `login_succeeded()` when it is done.
    `app_passwords=True` (HTTP Basic, SMTP/IMAP AUTH): an app password, or the account
    password while 2FA is off (with 2FA on, a password alone must not be enough).
    A failure counts towards the lockout of the account and of the client address.
    """
    if not identifier or password is None or len(identifier) > MAX_IDENTIFIER:
        raise InvalidCredentials()
    principal = find_login_principal(identifier)
    keys = throttle_keys(identifier=identifier, principal=principal, ip=ip)
    throttle_check(keys)
    ok = False
    if len(password) <= MAX_PASSWORD:
        if principal is None or not principal.is_active:
            make_password(password)  # the same work as a real check: no timing oracle
        else:
            if not (app_passwords and principal.otp_enabled):
                ok = verify_account_password(principal, password)
            if not ok and app_passwords:
                ok = verify_app_password(principal, password) is not None
    if not ok:
        login_failed(identifier=identifier, principal=principal, keys=keys, reason="password")
        raise InvalidCredentials()
    return principal


def login_failed(
    *, identifier: str, principal: Principal | None, keys: list[str], reason: str
) -> None:
    throttle_fail(keys)
    audit(
        actor=None,
        action="login.failed",
        object_type="principal",
        object_id=str(principal.pk) if principal else "",
        object_repr=(principal.name if principal else identifier.strip())[:255],
        tenant_id=principal.tenant_id if principal else None,
        changes={"reason": reason},
    )


def login_succeeded(*, principal: Principal, method: str) -> None:
    throttle_clear(f"account:{principal.name}")
    audit(actor=principal, action="login", obj=principal, changes={"method": method})


def verify_second_factor(*, principal: Principal, code: str, ip: str | None) -> str:
    """The method ("totp" or "recovery-code") of a valid second factor, or raise.

    Wrong codes count towards the lockout like wrong passwords (6 digits are guessable).
    """
    keys = throttle_keys(identifier=principal.name, principal=principal, ip=ip)
    throttle_check(keys)
    if twofactor.verify_login_code(principal, code):
        return "totp"
    if twofactor.use_recovery_code(principal, code):
        return "recovery-code"
    login_failed(identifier=principal.name, principal=principal, keys=keys, reason="code")
    raise ServiceError("Invalid authentication code.", field="code")
