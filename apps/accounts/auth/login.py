"""Password checks and lockout.

Every interface that takes a password (console login, HTTP Basic, later SMTP/IMAP AUTH)
goes through `authenticate_password()`, so lockout, imported-hash upgrades and app
passwords behave the same everywhere. No audit row ever holds a password or code.

Cost: one password-hash verification per attempt, whoever asks and whatever the answer
(an unknown name, a wrong password, a right one, twenty app passwords): the app password
to check is found by its keyed lookup (app_passwords.py), and a request with nothing to
check verifies against a dummy hash. Timing tells nobody which names exist. A mail client
repeating a name and password that just succeeded skips the hash (remembered.py): only
those who know the password can tell.

Lockout never lets a stranger lock the owner out. Failures are counted per account *and
client address* ("account:<name>|ip:<address>") and per address ("ip:<address>"); an
IPv6 address counts as its /64, which one client can fill with addresses. A key that
reaches its limit locks for `lock` seconds, and every failure after a lock ends locks it
again for twice as long (up to MAX_LOCK), until a day passes without failures. The owner
logging in from another address is not affected; a success clears that account's counter
for that address. Console and API share the counters.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.auth import remembered, twofactor
from apps.accounts.auth.app_passwords import (
    app_password_candidates,
    app_password_check,
    app_password_used,
)
from apps.accounts.auth.common import MAX_IDENTIFIER, MAX_PASSWORD, AuthMethod
from apps.accounts.auth.hashers import to_django_encoded
from apps.accounts.emails import InvalidAddress, normalize_address
from apps.accounts.models import (
    LOGIN_TYPES,
    AppPassword,
    LoginThrottle,
    Principal,
)
from mailadmin.audit import audit
from mailadmin.errors import ServiceError

MAX_LOCK = timedelta(hours=24)
FORGET_AFTER = timedelta(hours=24)  # after the last lock ends, a streak starts over
MAX_ACCOUNT_IN_KEY = 255  # "account:" + 255 + "|ip:" + an address fits LoginThrottle.key


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


class WrongCurrentPassword(ServiceError):
    def __init__(self) -> None:
        super().__init__("Your current password is not correct.", field="password")


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int
    window: timedelta
    lock: timedelta


def _policy(key: str) -> ThrottlePolicy:
    """5 failures of one account from one address in 15 min lock that pair for 15 min;
    20 from one address (many users may share it) lock the address.

    Overridable with MAILADMIN_LOGIN_LOCKOUT = {"account": (5, 900, 900), "ip": (...)}
    (failures, window seconds, first lock seconds); settings.py reads the failure counts
    from MAILADMIN_LOCKOUT_ACCOUNT_FAILURES and MAILADMIN_LOCKOUT_IP_FAILURES.
    """
    defaults = {"account": (5, 900, 900), "ip": (20, 900, 900)}
    configured = {**defaults, **getattr(settings, "MAILADMIN_LOGIN_LOCKOUT", {})}
    failures, window, lock = configured[key.split(":", 1)[0]]
    return ThrottlePolicy(failures, timedelta(seconds=window), timedelta(seconds=lock))


def throttle_address(ip: str | None) -> str:
    """The address as counted: IPv4 as it is, IPv6 as its /64 (one client's share)."""
    if not ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:45]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def throttle_keys(*, identifier: str, principal: Principal | None, ip: str | None) -> list[str]:
    """`account:<name>|ip:<address>` and `ip:<address>`. The principal's name, so name and
    address logins add up; unknown names are counted alike, so lockout tells nobody which
    exist. The address comes last: no identifier can spell another address's key."""
    account = principal.name if principal is not None else identifier.strip().lower()
    address = throttle_address(ip)
    return [f"account:{account[:MAX_ACCOUNT_IN_KEY]}|ip:{address}", f"ip:{address}"]


def throttle_check(keys: list[str]) -> None:
    now = timezone.now()
    locked = LoginThrottle.objects.filter(key__in=keys, locked_until__gt=now)
    until = max((row.locked_until for row in locked), default=None)
    if until is not None:
        raise LoginLocked((until - now).total_seconds())


def throttle_fail(keys: list[str]) -> None:
    """Count one failure per key; reaching the limit locks, and so does every failure
    after a lock has ended, each lock twice as long as the one before."""
    now = timezone.now()
    with transaction.atomic():
        for key in keys:
            policy = _policy(key)
            row, _ = LoginThrottle.objects.select_for_update().get_or_create(
                key=key, defaults={"failures": 0, "first_failure_at": now}
            )
            if row.locks and row.locked_until and now - row.locked_until > FORGET_AFTER:
                row.locks, row.locked_until = 0, None
                row.failures, row.first_failure_at = 0, now
            elif not row.locks and now - row.first_failure_at > policy.window:
                row.failures, row.first_failure_at = 0, now
            row.failures += 1
            row.last_failure_at = now
            if row.locks or row.failures >= policy.max_failures:
                row.locks += 1
                row.locked_until = now + min(policy.lock * 2 ** (row.locks - 1), MAX_LOCK)
            row.save(
                update_fields=[
                    "failures",
                    "first_failure_at",
                    "last_failure_at",
                    "locked_until",
                    "locks",
                ]
            )


def throttle_clear(key: str) -> None:
    LoginThrottle.objects.filter(key=key).delete()


def throttle_purge() -> int:
    """Delete rows no longer counting (for a periodic task)."""
    now = timezone.now()
    longest = max(_policy("account:").window, _policy("ip:").window)
    unlocked_and_old = Q(locks=0, first_failure_at__lt=now - longest)
    forgotten = Q(locks__gt=0, locked_until__lt=now - FORGET_AFTER)
    stale = LoginThrottle.objects.filter(
        unlocked_and_old | forgotten, key__regex=r"^(account|ip):"
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


def verify_nothing(password: str) -> None:
    """The cost of one real check when there is nothing to check (an unknown name)."""
    make_password(password)


def _verify(
    principal: Principal | None, password: str, app_passwords: bool
) -> tuple[str | None, AppPassword | None]:
    """(the AuthMethod the password proves, or None; the app password that matched).

    One hash verification in all cases but one: an account with imported app passwords
    not used yet (at most LEGACY_CHECKS)."""
    if principal is None or not principal.is_active:
        verify_nothing(password)
        return None, None
    legacy = []
    if app_passwords:
        match, legacy = app_password_candidates(principal, password)
        if match is not None:
            if app_password_check(match, password):
                return AuthMethod.APP_PASSWORD, match
            return None, None
    checked = False
    if not (app_passwords and principal.otp_enabled):
        checked = True
        if verify_account_password(principal, password):
            return AuthMethod.PASSWORD, None
    for row in legacy:
        checked = True
        if app_password_check(row, password):
            return AuthMethod.APP_PASSWORD, row
    if not checked:
        verify_nothing(password)
    return None, None


def authenticate_password(
    *, identifier: str, password: str, ip: str | None, app_passwords: bool
) -> Principal:
    """Who this name/address + password is, or LoginLocked / InvalidCredentials.

    `app_passwords=False` (console): the account password only; the caller asks for the
    TOTP code next if 2FA is on and calls `login_succeeded()` when it is done.
    `app_passwords=True` (HTTP Basic, SMTP/IMAP AUTH): an app password, or the account
    password while 2FA is off (with 2FA on, a password alone must not be enough). These
    mail-client logins are remembered for a short while (remembered.py): the same name
    and password again, while nothing about the credential changed, costs no hash.
    The principal comes back with `authenticated_by` saying which of the two it was.
    A failure counts towards the lockout of the account from this address and of the
    address.
    """
    if not identifier or password is None or len(identifier) > MAX_IDENTIFIER:
        raise InvalidCredentials()
    principal = find_login_principal(identifier)
    keys = throttle_keys(identifier=identifier, principal=principal, ip=ip)
    throttle_check(keys)
    method, app_password = None, None
    if len(password) <= MAX_PASSWORD:
        key = remembered.cache_key(identifier, password) if app_passwords else None
        recalled = remembered.recall(key, principal) if key else None
        if recalled is not None:
            method, app_password = recalled.method, recalled.app_password
            if app_password is not None:
                app_password_used(app_password)
        else:
            method, app_password = _verify(principal, password, app_passwords)
            if method is not None and key:
                remembered.remember(key, principal, app_password)
    if method is None:
        login_failed(identifier=identifier, principal=principal, keys=keys, reason="password")
        raise InvalidCredentials()
    principal.authenticated_by = method
    return principal


def confirm_password(*, actor: Principal, password: str, ip: str | None) -> None:
    """The console's "enter your current password" before a credential change. Wrong
    answers count towards the lockout like failed logins (a stolen session must not
    become a password oracle)."""
    keys = throttle_keys(identifier=actor.name, principal=actor, ip=ip)
    throttle_check(keys)
    if not (
        password and len(password) <= MAX_PASSWORD and verify_account_password(actor, password)
    ):
        login_failed(identifier=actor.name, principal=actor, keys=keys, reason="confirm-password")
        raise WrongCurrentPassword()


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


def login_cleared(*, principal: Principal, ip: str | None) -> None:
    """A success from this address: its failures for this account are forgiven (the
    address's own counter stays; other people may share the address)."""
    throttle_clear(throttle_keys(identifier=principal.name, principal=principal, ip=ip)[0])


def login_succeeded(*, principal: Principal, method: str, ip: str | None) -> None:
    login_cleared(principal=principal, ip=ip)
    audit(actor=principal, action="login", obj=principal, changes={"method": method})


def verify_second_factor(*, principal: Principal, code: str, ip: str | None) -> str:
    """The method ("totp" or "recovery-code") of a valid second factor, or raise.

    Wrong codes count towards the lockout like wrong passwords (6 digits are guessable),
    on the same per-address keys: a stranger's wrong codes never block the owner's code.
    """
    keys = throttle_keys(identifier=principal.name, principal=principal, ip=ip)
    throttle_check(keys)
    if twofactor.verify_login_code(principal, code):
        return "totp"
    if twofactor.use_recovery_code(principal, code):
        return "recovery-code"
    login_failed(identifier=principal.name, principal=principal, keys=keys, reason="code")
    raise ServiceError("Invalid authentication code.", field="code")
