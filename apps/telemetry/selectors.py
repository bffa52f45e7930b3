"""Reads of the telemetry app, and who may see the self-check.

The self-check shows the server's database type, listener addresses and resolver, so it is
for superadmins only; its runs have no tenant, which keeps them out of every tenant's task
lists (mailadmin.core.progress.task_run_list is the scoping entry point for runs).
"""

from __future__ import annotations

from apps.accounts.models import Principal
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import task_run_list
from mailadmin.errors import ServiceError

SELF_CHECK_KIND = "self-check"


class SuperadminOnly(ServiceError):
    status = 403
    title = "Forbidden"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "The self-check is for superadmins only: it shows the database, listener "
            "addresses and resolver of the server."
        )


TELEMETRY_SUPERADMINS_ONLY = (
    "Metrics and traces are for superadmins only: they cover every tenant of the server."
)


def require_superadmin(actor: Principal | None, message: str = "") -> None:
    """A superadmin, or a superadmin's API key (a key has its owner's reach)."""
    if actor is None or not actor.is_active or not actor.reaches_all_tenants:
        raise SuperadminOnly(message)


def require_telemetry_reader(actor: Principal | None) -> None:
    require_superadmin(actor, TELEMETRY_SUPERADMINS_ONLY)


def self_check_latest(*, actor: Principal) -> TaskRun | None:
    """The latest self-check run, for a superadmin."""
    require_superadmin(actor)
    return task_run_list(actor=actor).filter(kind=SELF_CHECK_KIND).first()
