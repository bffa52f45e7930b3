"""Writes to principals. Every change goes through here, whoever asks for it."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.models import Principal, PrincipalType


@transaction.atomic
def tenant_ensure(*, name: str, description: str = "") -> Principal:
    tenant, _ = Principal.objects.get_or_create(
        name=name, defaults={"type": PrincipalType.TENANT, "description": description}
    )
    return tenant


def builtin_role(name: str) -> Principal:
    return Principal.objects.get(name=name, type=PrincipalType.ROLE, tenant=None)
