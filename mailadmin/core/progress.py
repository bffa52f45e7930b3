"""Long work as a TaskRun: started here by task name, carried out by a task built on
mailadmin.core.taskbase, watched live through templates/core/task_progress.html.

Services start runs with `task_run_start` and never import a tasks module: the run names its
Celery task, and the worker that picks it up finds the body by that name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from apps.accounts.permissions import Perm
from mailadmin.audit import current_origin
from mailadmin.celery import app as celery_app
from mailadmin.core.models import TaskRun
from mailadmin.errors import NotFound, ServiceError
from mailadmin.tenancy import scope

if TYPE_CHECKING:
    from apps.accounts.models import Principal


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as its task body says; the base records it (ok: success)."""

    ok: bool
    message: str
    result: dict[str, Any] = field(default_factory=dict)


class Progress(Protocol):
    """What a service doing long work reports through (taskbase.RunContext is one)."""

    def begin(self, total: int) -> None:
        """There are `total` steps; none done yet."""

    def step(self, done: int, message: str) -> None:
        """`done` steps are done; `message` says what the last one found."""


def task_run_start(
    *,
    actor: Principal | None,
    kind: str,
    title: str,
    task_name: str,
    tenant_id: int | None,
    arguments: dict[str, Any] | None = None,
    busy: str | None = None,
) -> TaskRun:
    """Record a run and wake a worker for it once the transaction commits.

    `kind` names what the run works on (one unfinished run per kind): starting a kind that
    is already pending or running returns that run instead of a twin, or, when the new run
    carries input of its own that the running one would drop, raises ServiceError(`busy`) so
    the person is told rather than shown the other run. `actor` is the person
    starting it (None for the schedule); the worker acts as them, from their address.
    `arguments` are the task body's keyword arguments: ids, never objects.
    """
    fields = {
        "kind": kind,
        "title": title,
        "actor": actor,
        "actor_name": getattr(actor, "name", "") or "",
        "actor_ip": current_origin().ip if actor is not None else None,
        "tenant_id": tenant_id,
        "task_name": task_name,
        "arguments": arguments or {},
    }
    run, created = _create_unless_under_way(fields)
    if not created and busy is not None:
        raise ServiceError(busy)
    if created:
        transaction.on_commit(lambda: task_run_send(run))
    return run


def _create_unless_under_way(fields: dict[str, Any]) -> tuple[TaskRun, bool]:
    for _ in range(3):  # the run under way may finish between our insert and our look-up
        try:
            with transaction.atomic():
                return TaskRun.objects.create(**fields), True
        except IntegrityError:
            kind = fields["kind"]
            running = TaskRun.objects.filter(kind=kind, state__in=TaskRun.UNFINISHED).first()
            if running is not None:
                return running, False
    raise RuntimeError(f"could not start a run of kind {fields['kind']}")


def task_run_send(run: TaskRun, *, countdown: float | None = None) -> None:
    """Wake a worker for `run` by task name (the database holds the rest)."""
    celery_app.send_task(run.task_name, args=[str(run.pk)], countdown=countdown)


def task_run_list(*, actor: Principal) -> QuerySet[TaskRun]:
    """The one scoping entry point for runs: the actor's tenant (server-wide runs such as
    the self-check have none, so only superadmins see them); someone who may not start
    tasks sees only their own."""
    runs = scope(TaskRun.objects.select_related("actor"), actor)
    if not actor.has_permission(Perm.TASK_START):
        runs = runs.filter(actor=actor)
    return runs


def task_run_get(*, actor: Principal, run_id) -> TaskRun:
    run = task_run_list(actor=actor).filter(pk=run_id).first()
    if run is None:
        raise NotFound()
    return run
