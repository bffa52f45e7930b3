"""A short memory of mail-client logins that succeeded (HTTP Basic, SMTP AUTH).

A client sending Basic credentials with every API request would pay one Argon2
verification (0.2 s, 100 MiB) per request. After a success, the Django cache keeps for
`MAILADMIN_BASIC_AUTH_CACHE_SECONDS` (0: off) which credential these exact name and
password proved; the next request with them skips the hash.

- The cache key is an HMAC (key derived from SECRET_KEY) of the name as typed and the
  password: the cache holds no password, nor anything to guess one with offline.
- The entry names the principal and the app password (none: the account password) and
  carries a seal: an HMAC of the key, the principal's password hash and 2FA flag, and the
  app password's hash. A request that finds an entry still loads the principal (and the
  app password) by the name it sent and recomputes the seal from what they are now, so a
  changed or imported-then-upgraded password, a revoked app password, 2FA switched on or
  off, a disabled, renamed or deleted principal all end the entry at once. A forged or
  transplanted entry fails the seal without SECRET_KEY.
- It sits behind the lockout (login.authenticate_password checks the locks first), only
  successes are kept, and every attempt asks the cache once whoever it names: a wrong
  password is never found, and costs one hash as before.
- A cache that fails (Redis down, no cache table) only costs the hash: it is a miss.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.crypto import salted_hmac

from apps.accounts.auth.common import AuthMethod
from apps.accounts.models import AppPassword, Principal

log = logging.getLogger(__name__)

KEY_SALT = "mailadmin.accounts.remembered-login.key"
SEAL_SALT = "mailadmin.accounts.remembered-login.seal"


@dataclass(frozen=True)
class Recalled:
    """A remembered success still true of the principal as it is now."""

    method: str
    app_password: AppPassword | None


def lifetime() -> int:
    return max(0, int(getattr(settings, "MAILADMIN_BASIC_AUTH_CACHE_SECONDS", 0)))


def cache_key(identifier: str, password: str) -> str:
    """The name's length first, so no (name, password) pair spells another's input."""
    message = f"{len(identifier)}:{identifier}{password}"
    digest = salted_hmac(KEY_SALT, message, algorithm="sha256").hexdigest()
    return f"auth:login:{digest}"


def _seal(key: str, principal: Principal, app_password: AppPassword | None) -> str:
    parts = [
        key,
        str(principal.pk),
        principal.password,
        "2fa" if principal.otp_enabled else "-",
        str(app_password.pk) if app_password else "-",
        app_password.password if app_password else "-",
    ]
    return salted_hmac(SEAL_SALT, "\x00".join(parts), algorithm="sha256").hexdigest()


def recall(key: str, principal: Principal | None) -> Recalled | None:
    """The credential remembered under `key` if it still proves `principal` (the one the
    name finds now), else None. One cache read, asked whether or not the name exists."""
    if not lifetime():
        return None
    try:
        entry = cache.get(key)
    except Exception:  # the cache is an optimisation: a broken one is a miss
        log.warning("the login cache cannot be read", exc_info=True)
        return None
    if entry is None or principal is None:
        return None
    try:
        principal_id, app_password_id, seal = entry
    except (TypeError, ValueError):
        return _forget(key)
    if principal_id != principal.pk or not principal.is_active:
        return _forget(key)
    app_password = None
    if app_password_id is not None:
        app_password = principal.app_passwords.filter(pk=app_password_id).first()
        if app_password is None:
            return _forget(key)
    elif principal.otp_enabled:  # the account password alone no longer suffices
        return _forget(key)
    if not isinstance(seal, str) or not hmac.compare_digest(
        seal, _seal(key, principal, app_password)
    ):
        return _forget(key)
    method = AuthMethod.APP_PASSWORD if app_password else AuthMethod.PASSWORD
    return Recalled(method, app_password)


def remember(key: str, principal: Principal, app_password: AppPassword | None) -> None:
    """Keep a success (the stored hashes as they are after any upgrade)."""
    seconds = lifetime()
    if not seconds:
        return
    entry = (principal.pk, app_password.pk if app_password else None)
    try:
        cache.set(key, (*entry, _seal(key, principal, app_password)), timeout=seconds)
    except Exception:
        log.warning("the login cache cannot be written", exc_info=True)


def _forget(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:
        log.warning("the login cache cannot be written", exc_info=True)
    return None
