"""The audit log: every mutating service call records one AuditEvent.

Where a change came from (interface and client address) is set once per request by
AuditContextMiddleware, or by `audit_context()` in tasks and commands; services only say
what changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from mailadmin.core.models import AuditEvent

SECRET_FIELDS = frozenset({"password", "secrets", "secret", "totp_secret", "token", "code"})


@dataclass(frozen=True)
class Origin:
    interface: str
    ip: str | None = None


_origin: ContextVar[Origin] = ContextVar("audit_origin", default=Origin("command"))  # noqa: B039 - frozen


@contextlib.contextmanager
def audit_context(interface: str, ip: str | None = None) -> Iterator[None]:
    token = _origin.set(Origin(interface, ip))
    try:
        yield
    finally:
        _origin.reset(token)


def current_origin() -> Origin:
    """Where the change being made comes from; a task started now keeps the starter's ip."""
    return _origin.get()


def redact(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: ("<redacted>" if k in SECRET_FIELDS else v) for k, v in changes.items()}


def audit(
    *,
    actor,
    action: str,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    tenant_id: int | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record one change. `obj` fills type/id/repr; the tenant defaults to the actor's."""
    event = audit_event(
        actor=actor,
        action=action,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        tenant_id=tenant_id,
        changes=changes,
    )
    event.save(force_insert=True)
    return event


def audit_event(
    *,
    actor,
    action: str,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    tenant_id: int | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """The event `audit` records, unsaved: for a service that writes many changes at once
    (`AuditEvent.objects.bulk_create`, in the transaction of the changes)."""
    origin = _origin.get()
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:255]
    if tenant_id is None and actor is not None:
        tenant_id = actor.tenant_id
    return AuditEvent(
        actor=actor if actor is not None and actor.pk else None,
        actor_name=getattr(actor, "name", "") or "system",
        tenant_id=tenant_id,
        interface=origin.interface,
        ip=origin.ip,
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        changes=redact(changes or {}),
    )


def client_ip(request) -> str | None:
    """REMOTE_ADDR; a proxy in front must set it (see README), X-Forwarded-For is spoofable."""
    return request.META.get("REMOTE_ADDR") or None


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path
        interface = (
            "api"
            if path.startswith("/api/")
            else "admin"
            if (path.startswith("/admin/"))
            else "html"
        )
        with audit_context(interface, client_ip(request)):
            return self.get_response(request)
