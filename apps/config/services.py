"""Writes to the settings store: Update Settings (insert / delete / clear, all or nothing)
and Reload Settings. Server-wide, so superadmins only; every write is audited and bumps the
generation that tells every process to re-read (apps.config.cache)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from apps.accounts.models import Principal
from apps.accounts.permissions import Perm
from apps.config import cache, keys
from apps.config.models import Generation, Setting
from apps.config.selectors import require_superadmin
from mailadmin.audit import audit
from mailadmin.errors import Conflict, PermissionDenied

AUDITED_KEYS = 100  # keys named in one audit row; the rest are counted


@dataclass(frozen=True)
class Insert:
    """Set `values` ([key, value] pairs), each key under `prefix.` when one is given.
    `assert_empty`: refuse when the prefix (or without one, the first key) is already set."""

    values: list[tuple[str, str]]
    prefix: str | None = None
    assert_empty: bool = False


@dataclass(frozen=True)
class Delete:
    keys: list[str]


@dataclass(frozen=True)
class Clear:
    """Delete every key that starts with `prefix` (as written: `a.b.` or `a.b`)."""

    prefix: str


Change = Insert | Delete | Clear


@dataclass
class _Plan:
    steps: list[tuple[Change, Any]] = field(default_factory=list)
    set: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)


def _plan(changes: list[Change]) -> _Plan:
    """Every change checked before anything is written (the first bad one is the answer)."""
    plan = _Plan()
    for change in changes:
        if isinstance(change, Insert):
            prefix = change.prefix.rstrip(".") if change.prefix else ""
            if prefix:
                keys.check_prefix(prefix)
            values = {}
            for key, value in change.values:
                full = f"{prefix}.{key}" if prefix else key
                values[full] = keys.check_value(full, value)
            plan.steps.append((change, values))
            plan.set.update(values)
        elif isinstance(change, Delete):
            for key in change.keys:
                keys.check_key(key)
            plan.steps.append((change, list(change.keys)))
            plan.deleted.extend(change.keys)
        else:
            if not change.prefix:
                raise keys.SettingInvalid(
                    "A prefix is required: clearing every setting at once is refused",
                    field="prefix",
                )
            keys.check_prefix(change.prefix)
            plan.steps.append((change, change.prefix))
            plan.cleared.append(change.prefix)
    return plan


def _assert_empty(change: Insert, values: dict[str, str]) -> None:
    if change.prefix:
        prefix = keys.normalise_prefix(change.prefix)
        if Setting.objects.filter(key__startswith=prefix).exists():
            raise Conflict(f"Settings under {prefix} already exist.")
    elif values:
        first = next(iter(values))
        if Setting.objects.filter(key=first).exists():
            raise Conflict(f"The setting {first} already exists.")


def _bump() -> None:
    """A new generation: random, not a counter, so that one written by a transaction that
    rolled back (and maybe cached by this process meanwhile) is never reused."""
    Generation.objects.update_or_create(pk=1, defaults={"value": secrets.randbits(62)})
    cache.invalidate()
    transaction.on_commit(cache.invalidate)


def settings_update(*, actor: Principal, changes: list[Change]) -> None:
    require_superadmin(actor)
    if any(isinstance(c, Delete | Clear) for c in changes) and not actor.has_permission(
        Perm.SETTINGS_DELETE
    ):
        raise PermissionDenied(Perm.SETTINGS_DELETE)
    plan = _plan(changes)
    if not plan.steps:
        return
    with transaction.atomic():
        removed = 0
        for change, target in plan.steps:
            if isinstance(change, Delete):
                removed += Setting.objects.filter(key__in=target).delete()[0]
            elif isinstance(change, Clear):
                removed += Setting.objects.filter(key__startswith=target).delete()[0]
            else:
                if change.assert_empty:
                    _assert_empty(change, target)
                Setting.objects.bulk_create(
                    [Setting(key=k, value=v) for k, v in target.items()],
                    update_conflicts=True,
                    unique_fields=["key"],
                    update_fields=["value", "updated_at"],
                )
        _check_groups(plan)
        _bump()
        audit(
            actor=actor,
            action="settings.update",
            object_type="settings",
            object_repr="settings store",
            tenant_id=None,
            changes=_audited(plan, removed),
        )


def _touches(prefix: str, plan: _Plan) -> set[str]:
    touched = {k for k in [*plan.set, *plan.deleted] if k.startswith(prefix)}
    for cleared in plan.cleared:
        if cleared.startswith(prefix) or prefix.startswith(cleared):
            touched.add(cleared if cleared.startswith(prefix) else prefix)
    return touched


def _check_groups(plan: _Plan) -> None:
    """Keys that must agree (keys.register_group) are checked as the write leaves them,
    inside its transaction: a refusal rolls the whole write back. The generation row is
    locked first, so two concurrent writes are checked one after the other (each sees the
    other's committed keys), not both against the state before either."""
    locked = False
    for group in keys.groups():
        touched = _touches(group.prefix, plan)
        if touched:
            if not locked:
                Generation.objects.select_for_update().get_or_create(pk=1)
                locked = True
            stored = Setting.objects.filter(key__startswith=group.prefix)
            group.check(dict(stored.values_list("key", "value")), touched)


def _audited(plan: _Plan, removed: int) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if plan.set:
        changes["set"] = dict(list(plan.set.items())[:AUDITED_KEYS])
        if len(plan.set) > AUDITED_KEYS:
            changes["setCount"] = len(plan.set)
    if plan.deleted:
        changes["deleted"] = plan.deleted[:AUDITED_KEYS]
    if plan.cleared:
        changes["cleared"] = plan.cleared[:AUDITED_KEYS]
    if plan.deleted or plan.cleared:
        changes["removed"] = removed
    return changes


def settings_reload(*, actor: Principal) -> dict[str, dict[str, str]]:
    """Every process re-reads the store; answers the management API's
    `{"warnings": {key: why}, "errors": {key: why}}`: errors are stored values today's checks
    refuse (they are ignored: e.g. an override of a rule no longer in the rules file),
    warnings keys nothing in mailadmin reads (stored only)."""
    require_superadmin(actor)
    errors: dict[str, str] = {}
    warnings: dict[str, str] = {}
    for key, value in Setting.objects.order_by("key").values_list("key", "value").iterator():
        try:
            keys.check_value(key, value)
        except keys.SettingInvalid as exc:
            errors[key] = exc.message
            continue
        if not keys.is_used(key):
            warnings[key] = "Stored only: nothing in mailadmin reads this key."
    for group in keys.groups():
        stored = dict(
            Setting.objects.filter(key__startswith=group.prefix).values_list("key", "value")
        )
        valid = {k: v for k, v in stored.items() if k not in errors}
        try:
            group.check(valid, set(valid))
        except keys.SettingInvalid as exc:
            errors.setdefault(exc.field or group.prefix, exc.message)
    with transaction.atomic():
        _bump()
        audit(
            actor=actor,
            action="settings.reload",
            object_type="settings",
            object_repr="settings store",
            tenant_id=None,
            changes={"errors": len(errors), "warnings": len(warnings)},
        )
    return {"warnings": warnings, "errors": errors}
