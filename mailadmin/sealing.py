"""Secrets at rest: what the server must read back (DKIM private keys, TOTP secrets) is
sealed with Fernet (AES-128-CBC + HMAC-SHA256) under MAILADMIN_SECRETS_KEY before it
reaches the database, so a copied database or backup does not give away signing keys or
second factors.

Passwords and tokens are hashed instead: only what must be recovered is sealed. The
setting is a list of keys (MultiFernet): the first seals, every one unseals, which lets
`manage.py rotate_secrets_key` move all stored secrets to a new key while the service
keeps running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.signals import setting_changed
from django.db import models, transaction
from django.db.models.functions import Cast
from django.dispatch import receiver


class UnsealError(Exception):
    """A stored value no key in MAILADMIN_SECRETS_KEY opens: a lost key or a plain row."""


@cache
def _keys() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.MAILADMIN_SECRETS_KEYS])


@cache
def _current_key() -> Fernet:
    return Fernet(settings.MAILADMIN_SECRETS_KEYS[0])


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs) -> None:
    if setting == "MAILADMIN_SECRETS_KEYS":
        _keys.cache_clear()
        _current_key.cache_clear()


def seal(plain: str) -> str:
    """`plain` encrypted and authenticated under the current (first) key."""
    return _keys().encrypt(plain.encode("utf-8")).decode("ascii")


def unseal(token: str, *, where: str = "a stored secret") -> str:
    try:
        return _keys().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError):
        raise UnsealError(
            f"{where} cannot be decrypted with any key in MAILADMIN_SECRETS_KEY "
            "(was a key removed before `manage.py rotate_secrets_key` ran?)"
        ) from None


def is_sealed_under_current_key(token: str) -> bool:
    try:
        _current_key().decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        return False
    return True


class SealedTextField(models.TextField):
    """Text that is sealed on the way into the database and unsealed on the way out.

    The model attribute holds the plain value, so code reading `principal.totp_secret`
    or `key.private_key` needs no change. The empty string stays empty (it means "no
    secret", which other columns tell anyway). Filtering by value cannot work: each seal
    is randomised.
    """

    description = "Text sealed with MAILADMIN_SECRETS_KEY"

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return unseal(value, where=f"{self.model._meta.label}.{self.name}")

    def get_db_prep_save(self, value, connection):
        if hasattr(value, "as_sql"):
            return value  # an expression: already what the database should store
        value = super().get_db_prep_save(value, connection)
        return seal(value) if value else value


# --- rewriting what is stored: the data migrations and the key rotation ----------------


@dataclass
class Rewritten:
    """What one pass over one sealed column did."""

    label: str
    rewritten: int = 0
    changed_meanwhile: int = 0
    unreadable: list = field(default_factory=list)  # primary keys no key opens


def sealed_fields() -> Iterator[tuple[type[models.Model], str]]:
    """(model, field name) of every SealedTextField of the installed apps."""
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, SealedTextField):
                yield model, model_field.name


def stored_values(model, field_name: str, *, batch_size: int = 500) -> Iterator[list[tuple]]:
    """Batches of (pk, stored text) for the non-empty rows, read as stored (no unsealing)."""
    raw = Cast(field_name, output_field=models.TextField())
    rows = model._base_manager.exclude(**{field_name: ""}).annotate(_stored=raw)
    last = None
    while True:
        page = rows.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        batch = list(page.values_list("pk", "_stored")[:batch_size])
        if not batch:
            return
        yield batch
        last = batch[-1][0]


def rewrite_stored(
    model, field_name: str, transform: Callable[[str], str | None], *, batch_size: int = 500
) -> Rewritten:
    """Replace each stored value of a column by `transform(stored)` (None: leave it).

    Works below the field (raw reads and writes), so it serves both a migration's
    historical model and the live one, and leaves `auto_now` columns alone. A row whose
    value changed since it was read is skipped: whoever changed it sealed it afresh. A
    value `transform` cannot open (UnsealError) is left as it is and reported.
    """
    result = Rewritten(label=f"{model._meta.label}.{field_name}")
    raw = Cast(field_name, output_field=models.TextField())
    for batch in stored_values(model, field_name, batch_size=batch_size):
        with transaction.atomic():
            for pk, stored in batch:
                try:
                    new = transform(stored)
                except UnsealError:
                    result.unreadable.append(pk)
                    continue
                if new is None or new == stored:
                    continue
                updated = (
                    model._base_manager.annotate(_stored=raw)
                    .filter(pk=pk, _stored=stored)
                    .update(**{field_name: models.Value(new, output_field=models.TextField())})
                )
                if updated:
                    result.rewritten += 1
                else:
                    result.changed_meanwhile += 1
    return result


def seal_if_plain(stored: str) -> str | None:
    """For the data migrations: seal a plain value, leave an already sealed one."""
    try:
        _keys().decrypt(stored.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        return seal(stored)
    return None


def reseal(stored: str, *, where: str = "a stored secret") -> str:
    """The same secret sealed under the current key (MultiFernet.rotate)."""
    try:
        return _keys().rotate(stored.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeEncodeError):
        raise UnsealError(
            f"{where} cannot be decrypted with any key in MAILADMIN_SECRETS_KEY"
        ) from None
