"""Celery tasks of the reports app: thin wrappers over apps.reports.services."""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task

from apps.reports import services, sources
from apps.reports.services import reports_purge
from mailadmin.audit import audit_context
from mailadmin.core.progress import Outcome
from mailadmin.core.taskbase import RunContext, run_task

log = logging.getLogger(__name__)


@shared_task(name="reports.purge", ignore_result=True)
def reports_purge_task() -> dict:
    """Daily (Celery beat): drop reports older than MAILADMIN_REPORTS_RETENTION_DAYS.

    The service works in batches under a time budget; when it stops early it is queued
    again, so a large backlog drains over several runs without one long transaction.
    """
    with audit_context("task"):
        outcome = reports_purge()
    if not outcome.finished:
        reports_purge_task.apply_async(countdown=1)
    log.info("reports purge: %s", outcome)
    return asdict(outcome)


@run_task(name=services.INGEST_TASK, max_attempts=3, max_runtime=3600)
def reports_ingest_task(run: RunContext, *, upload_ids: list[int]) -> Outcome:
    """Ingest a large upload as whoever uploaded it. Safe to repeat from the start (the
    same report is stored once), so a run whose worker died is tried again."""
    return services.report_upload_run(upload_ids=upload_ids, progress=run)


@run_task(name=sources.SOURCE_NAMES_TASK, max_attempts=3, max_runtime=900)
def reports_resolve_sources_task(run: RunContext) -> Outcome:
    """Look up the PTR names of report sources that have none (safe to repeat)."""
    return sources.source_names_resolve_run(progress=run)


@shared_task(name="reports.resolve_sources_due", ignore_result=True)
def reports_resolve_sources_due_task() -> str | None:
    """Beat: start the lookup run when some source has no fresh name."""
    run = sources.source_names_resolve_start()
    return str(run.pk) if run is not None else None
