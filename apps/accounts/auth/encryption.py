"""Encryption-at-rest settings of an account (applied by the store)."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.auth import crypto
from apps.accounts.auth.common import _require, require_main_login
from apps.accounts.models import (
    EncryptionSettings,
    Principal,
    PrincipalType,
)
from apps.accounts.permissions import Perm
from mailadmin.audit import audit
from mailadmin.errors import ServiceError


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
    require_main_login(actor)
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
