"""What every part of authentication shares: input bounds and the actor checks."""

from __future__ import annotations

from apps.accounts.models import (
    Principal,
    PrincipalType,
)
from mailadmin.errors import PermissionDenied, ServiceError

MAX_IDENTIFIER = 320
MAX_PASSWORD = 1024


def _require(actor: Principal, permission: str) -> None:
    if not actor.has_permission(permission):
        raise PermissionDenied(permission)


def _require_account(actor: Principal) -> None:
    if actor.type != PrincipalType.INDIVIDUAL:
        raise ServiceError(
            "Only accounts have passwords, app passwords and two-factor authentication."
        )
