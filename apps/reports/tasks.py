"""Celery tasks of the reports app: thin wrappers over apps.reports.services."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import date

from celery import shared_task

from apps.reports import outgoing, services, sources
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


@run_task(name=outgoing.OUTGOING_TASK, max_attempts=3, max_runtime=3600)
def reports_outgoing_task(run: RunContext, *, day: str) -> Outcome:
    """Build one UTC day's outgoing DMARC and TLS reports (safe to repeat: a domain already
    reported for the day is skipped)."""
    return outgoing.outgoing_reports_generate(progress=run, day=date.fromisoformat(day))


@shared_task(name="reports.outgoing_due", ignore_result=True)
def reports_outgoing_due_task() -> str:
    """Beat, daily after midnight UTC: start the run for yesterday (once per day)."""
    return str(outgoing.outgoing_reports_start().pk)


@shared_task(name="reports.outgoing_send", ignore_result=True)
def reports_outgoing_send_task() -> dict:
    """Beat, every 10 minutes: hand the reports whose send time came to the outbound queue
    (each row locked and marked in the queue's own transaction: never sent twice)."""
    with audit_context("task"):
        return outgoing.outgoing_reports_send()
