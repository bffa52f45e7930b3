"""Authentication: password checks, lockout, 2FA, app passwords, API keys, OAuth, encryption.

Every interface that takes a password (console login, HTTP Basic, later SMTP/IMAP AUTH)
goes through `authenticate_password()`, so lockout, imported-hash upgrades and app
passwords behave the same everywhere. Writes audit themselves; no audit row ever holds a
password, code, token or key.
"""

from __future__ import annotations

import contextlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import metadata

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from apps.accounts import crypto, tokens, twofactor
from apps.accounts.hashers import import_password_hash, looks_like_crypt_hash, to_django_encoded
from apps.accounts.models import (
    LOGIN_TYPES,
    AccessToken,
    AppPassword,
    EncryptionSettings,
    LoginThrottle,
    OAuthCode,
    Principal,
    PrincipalType,
)
from apps.accounts.permissions import ALL_PERMISSIONS, Perm
from mailadmin.audit import audit
from mailadmin.errors import NotFound, PermissionDenied, ServiceError
from mailadmin.tenancy import scope

MAX_IDENTIFIER = 320
MAX_PASSWORD = 1024
NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,255}$")


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


def _require(actor: Principal, permission: str) -> None:
    if not actor.has_permission(permission):
        raise PermissionDenied(permission)


def _require_account(actor: Principal) -> None:
    if actor.type != PrincipalType.INDIVIDUAL:
        raise ServiceError(
            "Only accounts have passwords, app passwords and two-factor authentication."
        )


# --- lockout ---------------------------------------------------------------------------


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


# --- passwords -------------------------------------------------------------------------


def find_login_principal(identifier: str) -> Principal | None:
    """An account by its name, else by one of its e-mail addresses (stored normalized)."""
    identifier = (identifier or "").strip()
    if not identifier or len(identifier) > MAX_IDENTIFIER:
        return None
    candidates = Principal.objects.filter(type__in=LOGIN_TYPES)
    principal = candidates.filter(name=identifier).first()
    if principal is None and "@" in identifier:
        address = _normalize_address(identifier)
        principal = candidates.filter(emails__address=address).first()
    return principal


def _normalize_address(raw: str) -> str:
    local, _, domain = raw.strip().rpartition("@")
    domain = domain.strip().rstrip(".").lower()
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}".lower()


def verify_account_password(principal: Principal, password: str) -> bool:
    """Check the account password; an imported or outdated hash is replaced by Argon2."""

    def upgrade(raw: str) -> None:
        principal.set_password(raw)
        Principal.objects.filter(pk=principal.pk).update(password=principal.password)

    return check_password(password, to_django_encoded(principal.password), upgrade)


def verify_app_password(principal: Principal, password: str) -> AppPassword | None:
    """The app password of this principal that matches, its last use recorded."""
    for app_password in principal.app_passwords.order_by("pk"):

        def upgrade(raw: str, row: AppPassword = app_password) -> None:
            AppPassword.objects.filter(pk=row.pk).update(password=make_password(raw))

        if check_password(password, to_django_encoded(app_password.password), upgrade):
            now = timezone.now()
            last = app_password.last_used_at
            if last is None or now - last > tokens.LAST_USED_GRANULARITY:
                AppPassword.objects.filter(pk=app_password.pk).update(last_used_at=now)
            return app_password
    return None


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


# --- two-factor authentication ---------------------------------------------------------


@transaction.atomic
def totp_enable(*, actor: Principal, secret: str, code: str | None) -> list[str]:
    """Turn on TOTP with `secret`; from the console a current `code` proves the app has it.

    Returns new recovery codes (shown once). The API's enableOtpAuth passes code=None: the
    client proved nothing, as in the management API, and gets no recovery codes.
    """
    _require(actor, Perm.MANAGE_PASSWORDS)
    _require_account(actor)
    if code is not None and not twofactor.verify_code(secret, code):
        raise ServiceError("The code is not valid. Check the time on your device.", field="code")
    Principal.objects.filter(pk=actor.pk).update(totp_secret=secret, otp_enabled=True)
    actor.totp_secret, actor.otp_enabled = secret, True
    LoginThrottle.objects.filter(key=f"totp-step:{actor.pk}").delete()
    codes = twofactor.replace_recovery_codes(actor) if code is not None else []
    audit(actor=actor, action="otp.enable", obj=actor)
    return codes


@transaction.atomic
def totp_disable(*, actor: Principal, password: str | None = None, code: str | None = None):
    """Turn off TOTP. From the console `password` or a current `code` is required."""
    _require(actor, Perm.MANAGE_PASSWORDS)
    _require_account(actor)
    if password is not None or code is not None:
        proven = bool(password) and verify_account_password(actor, password)
        proven = proven or (bool(code) and twofactor.verify_code(actor.totp_secret, code))
        if not proven:
            raise ServiceError("Enter your current password or a valid code.", field="password")
    Principal.objects.filter(pk=actor.pk).update(totp_secret="", otp_enabled=False)
    actor.totp_secret, actor.otp_enabled = "", False
    actor.recovery_codes.all().delete()
    LoginThrottle.objects.filter(key=f"totp-step:{actor.pk}").delete()
    audit(actor=actor, action="otp.disable", obj=actor)


@transaction.atomic
def recovery_codes_regenerate(*, actor: Principal) -> list[str]:
    _require(actor, Perm.MANAGE_PASSWORDS)
    _require_account(actor)
    if not actor.otp_enabled:
        raise ServiceError("Turn on two-factor authentication first.")
    codes = twofactor.replace_recovery_codes(actor)
    audit(actor=actor, action="recovery-codes.regenerate", obj=actor)
    return codes


# --- app passwords ---------------------------------------------------------------------


def new_app_password() -> str:
    """Four groups of four lower-case letters (about 75 bits), easy to type on a phone."""
    alphabet = "abcdefghijkmnopqrstuvwxyz"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def _app_password_hash(name: str, password: str) -> str:
    if looks_like_crypt_hash(password):
        encoded = import_password_hash(password)
        if encoded is None:
            raise ServiceError(
                f"The password of app password '{name}' looks like a crypt hash but is malformed.",
                field="password",
            )
        return encoded
    if len(password) < 8 or len(password) > MAX_PASSWORD:
        raise ServiceError(
            f"The password of app password '{name}' must have 8 to {MAX_PASSWORD} characters.",
            field="password",
        )
    return make_password(password)


def _app_password_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ServiceError("Missing required field: name", field="name")
    name = name.strip()
    if len(name) > 255:
        raise ServiceError("The app password name is longer than 255 characters.", field="name")
    return name


def app_password_add(*, actor: Principal, name: str, password: str | None = None):
    """Add an app password; without `password` one is generated. Returns (row, plain).

    `password` may be a plain password (hashed with Argon2) or a `$6$`/`$5$`/bcrypt hash
    from another server (stored as such). `plain` is the generated password, else None.
    """
    _require(actor, Perm.MANAGE_PASSWORDS)
    _require_account(actor)
    name = _app_password_name(name)
    plain = None
    if password is None:
        plain = password = new_app_password()
    if not isinstance(password, str):
        raise ServiceError("Invalid value for field password: expected a string.", field="password")
    encoded = _app_password_hash(name, password)
    try:
        with transaction.atomic():
            row = AppPassword.objects.create(principal=actor, name=name, password=encoded)
            audit(actor=actor, action="app-password.create", obj=row, changes={"name": name})
    except IntegrityError:
        raise ServiceError(
            f"An app password named '{name}' already exists.", field="name"
        ) from None
    return row, plain


@transaction.atomic
def app_password_remove(*, actor: Principal, name: str | None = None, pk: int | None = None):
    _require(actor, Perm.MANAGE_PASSWORDS)
    _require_account(actor)
    rows = AppPassword.objects.filter(principal=actor)
    if pk is not None:
        row = rows.filter(pk=pk).first()
        if row is None:
            raise NotFound()
    else:
        name = _app_password_name(name)
        row = rows.filter(name=name).first()
        if row is None:
            raise ServiceError(f"There is no app password named '{name}'.", field="name")
    audit(actor=actor, action="app-password.delete", obj=row, changes={"name": row.name})
    row.delete()


def app_password_list(*, actor: Principal) -> QuerySet[AppPassword]:
    return AppPassword.objects.filter(principal=actor).order_by("name")


ACCOUNT_AUTH_ACTIONS = {
    "addAppPassword": ("name", "password"),
    "removeAppPassword": ("name",),
    "enableOtpAuth": ("url",),
    "disableOtpAuth": (),
}


@transaction.atomic
def account_auth_update(*, actor: Principal, actions: list[dict]) -> None:
    """POST /api/account/auth: every action or none (one transaction)."""
    _require(actor, Perm.MANAGE_PASSWORDS)
    _require_account(actor)
    for index, action in enumerate(actions):
        if not isinstance(action, dict):
            raise ServiceError(f"Action {index} must be an object.", field=f"[{index}]")
        kind = action.get("type")
        if kind is None:
            raise ServiceError("Missing required field: type", field=f"[{index}].type")
        if kind not in ACCOUNT_AUTH_ACTIONS:
            raise ServiceError(f"Unknown action type: {kind}", field=f"[{index}].type")
        fields = ACCOUNT_AUTH_ACTIONS[kind]
        extras = sorted(set(action) - {"type", *fields})
        if extras:
            raise ServiceError(f"Unrecognized field: {extras[0]}", field=f"[{index}].{extras[0]}")
        for required in fields:
            if action.get(required) in (None, ""):
                raise ServiceError(
                    f"Missing required field: {required}", field=f"[{index}].{required}"
                )
        if kind == "addAppPassword":
            app_password_add(actor=actor, name=action["name"], password=action["password"])
        elif kind == "removeAppPassword":
            app_password_remove(actor=actor, name=action["name"])
        elif kind == "enableOtpAuth":
            try:
                secret = twofactor.parse_otp_uri(str(action["url"]))
            except twofactor.InvalidOtpUri as exc:
                raise ServiceError(str(exc), field=f"[{index}].url") from None
            totp_enable(actor=actor, secret=secret, code=None)
        else:
            totp_disable(actor=actor)


# --- API keys --------------------------------------------------------------------------


def api_key_create(
    *,
    actor: Principal,
    name: str,
    permissions: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[Principal, str]:
    """An apiKey principal in the actor's tenant and its secret (returned once, stored hashed).

    `permissions` must be a subset of the actor's effective permissions; None grants all
    of them (a snapshot: later changes to the creator do not widen the key).
    """
    _require(actor, Perm.API_KEY_CREATE)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ServiceError(
            "Invalid value for field name: use 1 to 255 letters, digits and . _ @ -",
            field="name",
        )
    if permissions is None:
        granted = sorted(actor.permissions)
    else:
        granted = []
        for permission in permissions:
            if permission not in ALL_PERMISSIONS:
                raise ServiceError(f"Unknown permission: {permission}", field="permissions")
            if permission not in actor.permissions:
                raise ServiceError(
                    f"You cannot grant the permission '{permission}': you do not have it.",
                    field="permissions",
                )
            if permission not in granted:
                granted.append(permission)
        granted.sort()
    if expires_at is not None:
        if timezone.is_naive(expires_at):
            expires_at = timezone.make_aware(expires_at)
        if expires_at <= timezone.now():
            raise ServiceError("The expiry must be in the future.", field="expiresAt")
    try:
        with transaction.atomic():
            key = Principal(
                type=PrincipalType.API_KEY,
                name=name,
                tenant_id=actor.tenant_id,
                enabled_permissions=granted,
                created_by=actor if actor.pk else None,
            )
            key.set_unusable_password()
            key.save()
            row, secret = tokens.token_issue(
                principal=key, kind=AccessToken.Kind.API_KEY, name=name
            )
            if expires_at is not None:
                row.expires_at = expires_at
                row.save(update_fields=["expires_at"])
            audit(
                actor=actor,
                action="api-key.create",
                obj=key,
                tenant_id=key.tenant_id,
                changes={
                    "name": name,
                    "permissions": granted,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
    except IntegrityError:
        raise ServiceError(f"A principal named '{name}' already exists.", field="name") from None
    return key, secret


def api_key_list(*, actor: Principal) -> QuerySet[Principal]:
    """The API keys the actor may see (its tenant's), with last use and expiry annotated."""
    _require(actor, Perm.API_KEY_LIST)
    keys = Principal.objects.filter(type=PrincipalType.API_KEY)
    return (
        scope(keys, actor)
        .select_related("created_by", "tenant")
        .annotate(last_used_at=Max("tokens__last_used_at"), expires_at=Max("tokens__expires_at"))
        .order_by("-created_at", "-pk")
    )


def api_key_get(*, actor: Principal, key_id) -> Principal:
    keys = scope(Principal.objects.filter(type=PrincipalType.API_KEY), actor)
    try:
        return keys.get(pk=int(key_id))
    except (Principal.DoesNotExist, TypeError, ValueError):
        raise NotFound() from None


@transaction.atomic
def api_key_revoke(*, actor: Principal, key) -> Principal:
    """Revoke a key of the actor's tenant (another tenant's: NotFound, not Forbidden)."""
    _require(actor, Perm.API_KEY_DELETE)
    key = api_key_get(actor=actor, key_id=key.pk if isinstance(key, Principal) else key)
    now = timezone.now()
    AccessToken.objects.filter(principal=key, revoked_at__isnull=True).update(revoked_at=now)
    if key.is_active:
        Principal.objects.filter(pk=key.pk).update(is_active=False)
        key.is_active = False
        audit(actor=actor, action="api-key.revoke", obj=key, tenant_id=key.tenant_id)
    return key


# --- OAuth -----------------------------------------------------------------------------

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
    """A single-use authorization code for the authenticated actor (stored hashed)."""
    code = secrets.token_urlsafe(30)  # 40 characters, as in the spec's example
    now = timezone.now()
    OAuthCode.objects.create(
        principal=actor,
        code_hash=tokens.hash_token(code),
        client_id=client_id[:255],
        redirect_uri=redirect_uri[:1024],
        created_at=now,
        expires_at=now + OAUTH_CODE_TTL,
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


# --- encryption at rest ----------------------------------------------------------------


def encryption_settings_get(*, actor: Principal) -> dict:
    _require(actor, Perm.MANAGE_ENCRYPTION)
    row = EncryptionSettings.objects.filter(principal=actor).first()
    if row is None or row.type == EncryptionSettings.Type.DISABLED:
        return {"type": EncryptionSettings.Type.DISABLED.value}
    return {"type": row.type, "algo": row.algorithm}


@transaction.atomic
def encryption_settings_update(
    *, actor: Principal, type: str, algo: str | None = None, certs: str | None = None
) -> int:
    """Store the settings after parsing the keys; returns how many keys/certs were accepted."""
    _require(actor, Perm.MANAGE_ENCRYPTION)
    if actor.type != PrincipalType.INDIVIDUAL:
        raise ServiceError("Only accounts have encryption-at-rest settings.")
    kind = (type or "").strip().lower()
    if kind == EncryptionSettings.Type.DISABLED:
        algorithm, normalized, count, identities = "", "", 0, []
    elif kind in (EncryptionSettings.Type.PGP, EncryptionSettings.Type.SMIME):
        if algo in (None, ""):
            raise ServiceError("Missing required field: algo", field="algo")
        algorithm = crypto.normalize_algorithm(algo)
        if algorithm is None:
            raise ServiceError(
                f"Invalid value for field algo: {algo} (use Aes128 or Aes256)", field="algo"
            )
        if certs in (None, ""):
            raise ServiceError("Missing required field: certs", field="certs")
        parse = (
            crypto.parse_openpgp_public_keys
            if kind == EncryptionSettings.Type.PGP
            else crypto.parse_smime_certificates
        )
        try:
            parsed = parse(certs)
        except crypto.InvalidKey as exc:
            raise ServiceError(str(exc), field="certs") from None
        normalized, count, identities = parsed.normalized, parsed.count, parsed.identities
    else:
        raise ServiceError(
            f"Invalid value for field type: {type} (use disabled, pgp or smime)", field="type"
        )
    EncryptionSettings.objects.update_or_create(
        principal=actor,
        defaults={"type": kind, "algorithm": algorithm, "certificates": normalized},
    )
    audit(
        actor=actor,
        action="encryption.update",
        obj=actor,
        changes={"type": kind, "algo": algorithm, "keys": identities},
    )
    return count


# --- housekeeping ----------------------------------------------------------------------

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
