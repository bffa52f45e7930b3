"""Celery tasks of the queue (queue `delivery`): thin wrappers over apps.queue.delivery.

The broker only carries wake-ups; each task claims its work in the database, so a
duplicate or late message does nothing and a lost one is found by the sweep.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task

from apps.queue import delivery, fetch_services
from mailadmin.audit import audit_context
from mailadmin.core.progress import Outcome
from mailadmin.core.taskbase import RunContext, run_task

log = logging.getLogger(__name__)


@shared_task(name="queue.deliver", ignore_result=True, acks_late=True)
def queue_deliver_task(domain_id: int | None = None) -> int:
    """Deliver domain entry `domain_id` if it is still due and free, then other due ones."""
    with audit_context("task"):
        return delivery.deliver(domain_id)


@shared_task(name="queue.sweep", ignore_result=True)
def queue_sweep_task() -> dict:
    """Celery beat, every 30 s: lost wake-ups, lapsed leases, delay DSNs, chart samples."""
    with audit_context("task"):
        swept = delivery.sweep()
    if swept.woken or swept.delay_notices:
        log.info("queue sweep: %s", swept)
    return asdict(swept)


@run_task(
    name=fetch_services.FETCH_TASK, max_attempts=1, max_runtime=fetch_services.FETCH_MAX_RUNTIME
)
def fetch_job_task(run: RunContext, *, job_id: int) -> Outcome:
    """One run of a fetch job. Not retried by the base: the job's next run (its interval)
    is the retry, and a message is never fetched twice either way."""
    return fetch_services.fetch_job_run(job_id=job_id, progress=run)


@shared_task(name="queue.fetch_due", ignore_result=True)
def fetch_due_task() -> int:
    """Beat, every minute: start a run for each fetch job that is due and free."""
    with audit_context("task"):
        return fetch_services.fetch_jobs_schedule()
