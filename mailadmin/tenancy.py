"""Tenant scoping: the one rule every selector applies to what an actor may see."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from django.db.models import Model, QuerySet

if TYPE_CHECKING:
    from apps.accounts.models import Principal

M = TypeVar("M", bound=Model)


def scope(queryset: QuerySet[M], actor: Principal, *, tenant_field: str = "tenant") -> QuerySet[M]:
    """Rows of the actor's tenant; everything for a superadmin (and a superadmin's API key:
    a key has its owner's reach); nothing for anyone else."""
    if actor.reaches_all_tenants:
        return queryset
    if actor.tenant_id is None:
        return queryset.none()
    return queryset.filter(**{f"{tenant_field}_id": actor.tenant_id})


def reaches(actor: Principal, tenant_id: int | None) -> bool:
    """Whether a row of tenant `tenant_id`, already loaded, is in the actor's scope: the
    rule of `scope`, asked of one row without a query."""
    if actor.reaches_all_tenants:
        return True
    return actor.tenant_id is not None and tenant_id == actor.tenant_id
