"""Celery tasks of the telemetry app: thin wrappers over apps.telemetry.services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.telemetry import services
from apps.telemetry.traces import telemetry_purge
from mailadmin.core.progress import Outcome
from mailadmin.core.taskbase import RunContext, run_task


@run_task(name=services.SELF_CHECK_TASK, max_attempts=2, max_runtime=300)
def self_check_task(run: RunContext) -> Outcome:
    """Only reads and connects, so a run whose worker died is simply tried again."""
    return services.self_check_run(actor=run.actor, progress=run)


@shared_task(name="telemetry.purge", ignore_result=True)
def telemetry_purge_task() -> dict:
    """Daily (Celery beat): traces and metric buckets past
    MAILADMIN_TELEMETRY_RETENTION_DAYS. Repeating it deletes nothing twice."""
    traces, buckets = telemetry_purge(days=settings.MAILADMIN_TELEMETRY_RETENTION_DAYS)
    return {"traces": traces, "buckets": buckets}
