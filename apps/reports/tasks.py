"""Celery tasks of the reports app: thin wrappers over apps.reports.services."""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task

from apps.reports.services import reports_purge
from mailadmin.audit import audit_context

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
