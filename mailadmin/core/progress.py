"""Start long work as a TaskRun + Celery task, and report its progress from the worker."""

from __future__ import annotations

from typing import Any

from celery import Task
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.permissions import Perm
from mailadmin.core.models import TaskRun
from mailadmin.errors import NotFound
from mailadmin.tenancy import scope


def task_run_start(*, actor, kind: str, title: str, task: Task, **kwargs: Any) -> TaskRun:
    """Record the run, then enqueue the task once the transaction commits."""
    run = TaskRun.objects.create(kind=kind, title=title, actor=actor, tenant_id=actor.tenant_id)
    transaction.on_commit(lambda: task.delay(str(run.id), **kwargs))
    return run


def task_run_list(*, actor) -> QuerySet[TaskRun]:
    """Runs of the actor's tenant; someone who may not start tasks sees only their own."""
    runs = scope(TaskRun.objects.select_related("actor"), actor)
    if not actor.has_permission(Perm.TASK_START):
        runs = runs.filter(actor=actor)
    return runs


def task_run_get(*, actor, run_id) -> TaskRun:
    run = task_run_list(actor=actor).filter(pk=run_id).first()
    if run is None:
        raise NotFound()
    return run


def task_run_claim(run_id: str, *, total: int) -> bool:
    """Move a pending run to running; False when another worker already has it."""
    claimed = TaskRun.objects.filter(pk=run_id, state=TaskRun.State.PENDING).update(
        state=TaskRun.State.RUNNING, total=total, updated_at=timezone.now()
    )
    return claimed == 1


def task_run_progress(run_id: str, *, done: int, message: str) -> None:
    TaskRun.objects.filter(pk=run_id).update(
        done=done, message=message[:1024], updated_at=timezone.now()
    )


def task_run_finish(run_id: str, *, ok: bool, message: str, result: dict | None = None) -> None:
    state = TaskRun.State.SUCCESS if ok else TaskRun.State.FAILURE
    now = timezone.now()
    TaskRun.objects.filter(pk=run_id).update(
        state=state, message=message[:1024], result=result or {}, finished_at=now, updated_at=now
    )
