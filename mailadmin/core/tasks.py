"""Celery tasks of the task base itself: the reaper, run every minute by Celery beat."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from mailadmin.core.taskbase import reap_runs


@shared_task(name="core.reap_runs", ignore_result=True)
def reap_runs_task() -> dict[str, int]:
    """Recover runs whose worker died; see mailadmin.core.taskbase.reap_runs."""
    return asdict(reap_runs())
