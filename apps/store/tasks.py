"""Store maintenance tasks on the `maintenance` queue: thin wrappers over
apps.store.maintenance, carried out as runs of the shared task base (claim, lease,
outcome, the starter's audit context). Every body is safe to repeat from the start: what
a purge deleted stays deleted, and a reindex writes the same values again."""

from __future__ import annotations

from celery import shared_task

from apps.store import maintenance
from mailadmin.core.progress import Outcome
from mailadmin.core.taskbase import RunContext, run_task


@shared_task(name="store.purge_due", ignore_result=True)
def store_purge_due_task(blobs: bool = False) -> list[str]:
    """Beat, daily: start the account, data and in-memory purges (or the blob purge)."""
    return [str(run.pk) for run in maintenance.scheduled_runs_start(blob=blobs)]


@run_task(name=maintenance.PURGE_ACCOUNTS_TASK, max_attempts=3, max_runtime=3600)
def purge_accounts_task(run: RunContext, *, tenant_id: int | None = None) -> Outcome:
    return maintenance.accounts_purge_run(actor=run.actor, tenant_id=tenant_id, progress=run)


@run_task(name=maintenance.PURGE_ACCOUNT_TASK, max_attempts=3, max_runtime=900)
def purge_account_task(run: RunContext, *, account_id: int) -> Outcome:
    return maintenance.account_purge_run(actor=run.actor, account_id=account_id, progress=run)


@run_task(name=maintenance.PURGE_BLOB_TASK, max_attempts=3, max_runtime=3600)
def purge_blob_task(run: RunContext) -> Outcome:
    return maintenance.blob_purge_run(actor=run.actor, progress=run)


@run_task(name=maintenance.PURGE_DATA_TASK, max_attempts=3, max_runtime=1800)
def purge_data_task(run: RunContext) -> Outcome:
    return maintenance.data_purge_run(actor=run.actor, progress=run)


@run_task(name=maintenance.PURGE_IN_MEMORY_TASK, max_attempts=3, max_runtime=600)
def purge_in_memory_task(run: RunContext) -> Outcome:
    return maintenance.in_memory_purge_run(actor=run.actor, progress=run)


@run_task(name=maintenance.REINDEX_TASK, max_attempts=3, max_runtime=3600)
def reindex_task(run: RunContext, *, tenant_id: int | None = None) -> Outcome:
    return maintenance.reindex_run(actor=run.actor, tenant_id=tenant_id, progress=run)
