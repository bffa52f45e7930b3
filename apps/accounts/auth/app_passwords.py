"""App passwords: one per mail client (HTTP Basic, SMTP/IMAP AUTH), never for the console."""

from __future__ import annotations

import secrets

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.auth import tokens
from apps.accounts.auth.common import MAX_PASSWORD, _require, _require_account
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
