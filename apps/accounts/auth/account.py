"""POST /api/account/auth: the account's own app passwords and two-factor settings."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.auth import twofactor
from apps.accounts.auth.app_passwords import app_password_add, app_password_remove
from apps.accounts.auth.common import _require, _require_account, require_main_login
from apps.accounts.auth.totp import totp_disable, totp_enable
from apps.accounts.models import (
    Principal,
)
from apps.accounts.permissions import Perm
from mailadmin.errors import ServiceError

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
    require_main_login(actor)
    for index, action in enumerate(actions):
        if not isinstance(action, dict):
            raise ServiceError(f"Action {index} must be an object.", field=f"[{index}]")
        kind = action.get("type")
        if kind is None:
            raise ServiceError("Missing required field: type", field=f"[{index}].type")
        if not isinstance(kind, str):
            raise ServiceError(
                "Invalid value for field type: expected a string.", field=f"[{index}].type"
            )
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
