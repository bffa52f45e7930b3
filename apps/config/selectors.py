"""Reads of the settings store. The store is server-wide: only a superadmin (or a
superadmin's API key) reads it, whatever permissions a role hands out (fail closed)."""

from __future__ import annotations

from bisect import bisect_left

from django.db.models import Q, QuerySet

from apps.accounts.models import Principal
from apps.config.keys import normalise_prefix
from apps.config.models import Setting
from mailadmin.errors import ServiceError

MAX_GROUP_ROWS = 100_000


class ServerWideOnly(ServiceError):
    status = 403
    title = "Forbidden"

    def __init__(self) -> None:
        super().__init__(
            "The settings store is server-wide: only a superadmin may read or change it."
        )


def require_superadmin(actor: Principal | None) -> None:
    if actor is None or not actor.is_active or not actor.reaches_all_tenants:
        raise ServerWideOnly()


def setting_list(*, actor: Principal, prefix: str = "") -> QuerySet[Setting]:
    """Every setting whose key starts with `prefix` (as given), by key."""
    require_superadmin(actor)
    settings = Setting.objects.order_by("key")
    return settings.filter(key__startswith=prefix) if prefix else settings


def setting_values(*, actor: Principal, keys: list[str], prefixes: list[str]) -> dict[str, str]:
    """List Settings by Key: the keys asked for that are set, and every key under each
    prefix (full keys); one query."""
    require_superadmin(actor)
    condition = Q(key__in=keys) if keys else Q(pk__in=[])
    for prefix in prefixes:
        condition |= Q(key__startswith=normalise_prefix(prefix))
    if not keys and not prefixes:
        return {}
    return dict(Setting.objects.filter(condition).order_by("key").values_list("key", "value"))


def setting_groups(*, actor: Principal, prefix: str, suffix: str = "") -> list[dict[str, str]]:
    """List Settings by Group, as the management API groups them: under `prefix.`, each
    record is an id and its fields (`server.listener.smtp.bind` -> `{"_id": "smtp", "bind":
    ...}`). With `suffix`, record ids are the keys ending in `.suffix` (ids may hold dots)."""
    prefix = normalise_prefix(prefix)
    rows = list(
        setting_list(actor=actor, prefix=prefix).values_list("key", "value")[:MAX_GROUP_ROWS]
    )
    # Sorted here: the database's collation may order "." and "-" otherwise.
    relative = sorted((key[len(prefix) :], value) for key, value in rows)
    records: dict[str, dict[str, str]] = {}
    if suffix:
        dotted = suffix if suffix.startswith(".") else f".{suffix}"
        names = [key for key, _ in relative]
        ids = [key[: -len(dotted)] for key in names if key.endswith(dotted)]
        for record_id in (i for i in ids if i):
            record = records.setdefault(record_id, {"_id": record_id})
            start = f"{record_id}."
            at = bisect_left(names, start)
            while at < len(names) and names[at].startswith(start):
                record[names[at][len(start) :]] = relative[at][1]
                at += 1
    else:
        for key, value in relative:
            record_id, _, field = key.partition(".")
            records.setdefault(record_id, {"_id": record_id})[field] = value
    return [records[i] for i in sorted(records)]
