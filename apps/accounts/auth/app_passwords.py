"""App passwords: one per mail client (HTTP Basic, SMTP/IMAP AUTH), never for the console.

Finding the row costs no password hashing: each row carries `lookup`, a keyed SHA-256 of
the password (HMAC with SECRET_KEY), so a login computes one cheap HMAC, fetches at most
one row by it and verifies that row's Argon2 hash: one hash per login, however many app
passwords the account has. The Argon2 hash stays the verifier; the HMAC only selects.

An app password imported as a crypt hash (`$6$...`) has no lookup until its first
successful use, since its plain text is unknown; logins try at most LEGACY_CHECKS of those,
and an account may hold no more than that many at once.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.crypto import salted_hmac

from apps.accounts.auth import tokens
from apps.accounts.auth.common import (
    MAX_PASSWORD,
    _require,
    _require_account,
    require_main_login,
)
from apps.accounts.auth.hashers import (
    import_password_hash,
    looks_like_crypt_hash,
    to_django_encoded,
)
from apps.accounts.models import (
    AppPassword,
    Principal,
)
from apps.accounts.permissions import Perm
from mailadmin.audit import audit
from mailadmin.errors import NotFound, ServiceError

LOOKUP_SALT = "mailadmin.accounts.app-password-lookup"
LEGACY_CHECKS = 5


def lookup_digests(password: str) -> list[str]:
    """The password's lookup under SECRET_KEY, then under each of SECRET_KEY_FALLBACKS, so
    rotating the key does not break app passwords (their first use re-keys them)."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [
        salted_hmac(LOOKUP_SALT, password, secret=key, algorithm="sha256").hexdigest()
        for key in keys
    ]


def app_password_candidates(
    principal: Principal, password: str
) -> tuple[AppPassword | None, list[AppPassword]]:
    """(the row whose lookup matches, else None; the unused imported rows to fall back on).

    One query, no hashing: a wrong password finds no match and at most LEGACY_CHECKS rows.
    """
    digests = lookup_digests(password)
    rows = list(
        principal.app_passwords.filter(Q(lookup__in=digests) | Q(lookup=""))
        .annotate(
            matched=Case(
                When(lookup="", then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("-matched", "-pk")[: LEGACY_CHECKS + 1]
    )
    if rows and rows[0].lookup:
        return rows[0], []
    return None, rows[:LEGACY_CHECKS]


def app_password_check(row: AppPassword, password: str) -> bool:
    """One hash verification; on success the use is recorded and an imported or outdated
    hash is replaced by Argon2, with the lookup (re)computed under the current key."""
    upgraded: dict[str, str] = {}

    def upgrade(raw: str) -> None:
        upgraded["password"] = make_password(raw)

    if not check_password(password, to_django_encoded(row.password), upgrade):
        return False
    changes = dict(upgraded)
    current = lookup_digests(password)[0]
    if row.lookup != current:
        changes["lookup"] = current
    _record_use(row, changes)
    return True


def app_password_used(row: AppPassword) -> None:
    """A use proved without a hash check (a remembered login, see remembered.py)."""
    _record_use(row, {})


def _record_use(row: AppPassword, changes: dict) -> None:
    """Write `changes` and the time of use (at most once a minute) to the row, and keep
    the instance as stored: a remembered login seals the hash it holds."""
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > tokens.LAST_USED_GRANULARITY:
        changes["last_used_at"] = now
    if not changes:
        return
    try:
        with transaction.atomic():
            AppPassword.objects.filter(pk=row.pk).update(**changes)
    except IntegrityError:  # another row has the same password: keep this one unkeyed
        changes.pop("lookup", None)
        if changes:
            AppPassword.objects.filter(pk=row.pk).update(**changes)
    for field, value in changes.items():
        setattr(row, field, value)


def new_app_password() -> str:
    """Four groups of four lower-case letters (about 75 bits), easy to type on a phone."""
    alphabet = "abcdefghijkmnopqrstuvwxyz"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def _app_password_hash(name: str, password: str) -> tuple[str, str]:
    """(the stored hash, the lookup): an imported crypt hash has no lookup yet."""
    if looks_like_crypt_hash(password):
        encoded = import_password_hash(password)
        if encoded is None:
            raise ServiceError(
                f"The password of app password '{name}' looks like a crypt hash but is malformed.",
                field="password",
            )
        return encoded, ""
    if len(password) < 8 or len(password) > MAX_PASSWORD:
        raise ServiceError(
            f"The password of app password '{name}' must have 8 to {MAX_PASSWORD} characters.",
            field="password",
        )
    return make_password(password), lookup_digests(password)[0]


def _app_password_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ServiceError("Missing required field: name", field="name")
    name = name.strip()
    if "\x00" in name:  # as every other text field says it (DRF's CharField)
        raise ServiceError(
            "Invalid value for field name: Null characters are not allowed.", field="name"
        )
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
    require_main_login(actor)
    name = _app_password_name(name)
    plain = None
    if password is None:
        plain = password = new_app_password()
    if not isinstance(password, str):
        raise ServiceError("Invalid value for field password: expected a string.", field="password")
    encoded, lookup = _app_password_hash(name, password)
    rows = AppPassword.objects.filter(principal=actor)
    if lookup and rows.filter(lookup=lookup).exists():
        raise ServiceError(
            f"The password of app password '{name}' is already used by another of your "
            "app passwords.",
            field="password",
        )
    if not lookup and rows.filter(lookup="").count() >= LEGACY_CHECKS:
        raise ServiceError(
            f"You already have {LEGACY_CHECKS} imported app passwords that were never used; "
            "use or remove one before importing another.",
            field="password",
        )
    try:
        with transaction.atomic():
            row = AppPassword.objects.create(
                principal=actor, name=name, password=encoded, lookup=lookup
            )
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
    require_main_login(actor)
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
