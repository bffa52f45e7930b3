"""Reads of fetch jobs and their monitoring entries, scoped to the acting principal.

Tenant isolation lives in `fetch_jobs_visible` and `fetch_entries_visible`
(mailadmin.tenancy.scope on the job's tenant, the local mailbox's): another tenant's job or
entry is simply not found (404).
"""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from apps.accounts.models import Principal
from apps.queue.models import FetchEntry, FetchJob
from mailadmin.errors import NotFound, ValidationFailed
from mailadmin.tenancy import scope

JOB_NOT_FOUND = "Fetch job not found"
ENTRY_NOT_FOUND = "Monitoring entry not found"
ENTRY_STATUSES = tuple(FetchEntry.Status.values)


def fetch_jobs_visible(actor: Principal) -> QuerySet[FetchJob]:
    return scope(FetchJob.objects.all(), actor)


def fetch_entries_visible(actor: Principal) -> QuerySet[FetchEntry]:
    return scope(FetchEntry.objects.all(), actor)


def fetch_job_list(*, actor: Principal, search: str = "") -> QuerySet[FetchJob]:
    """Newest first, each with its mailbox (one query a page)."""
    jobs = fetch_jobs_visible(actor).select_related("mailbox", "tenant")
    search = (search or "").strip()[:320]
    if search:
        jobs = jobs.filter(mailbox_address__icontains=search) | jobs.filter(host__icontains=search)
    return jobs.order_by("-created_at", "-id")


def fetch_job_get(*, actor: Principal, job_uuid: str | uuid.UUID) -> FetchJob:
    try:
        key = job_uuid if isinstance(job_uuid, uuid.UUID) else uuid.UUID(str(job_uuid))
    except (TypeError, ValueError):
        raise NotFound(JOB_NOT_FOUND) from None
    job = fetch_jobs_visible(actor).select_related("mailbox", "tenant").filter(uuid=key).first()
    if job is None:
        raise NotFound(JOB_NOT_FOUND)
    return job


def fetch_entry_list(
    *, actor: Principal, status: str = "", job: FetchJob | None = None
) -> QuerySet[FetchEntry]:
    """Monitoring entries newest first, each with its job (one query a page)."""
    if status and status not in ENTRY_STATUSES:
        raise ValidationFailed(
            f"Unknown status: {status[:32]}. One of: " + ", ".join(ENTRY_STATUSES),
            field="status",
        )
    entries = fetch_entries_visible(actor).select_related("job")
    if status:
        entries = entries.filter(status=status)
    if job is not None:
        entries = entries.filter(job=job)
    return entries.order_by("-created_at", "-id")


def fetch_entry_get(*, actor: Principal, entry_id: int | str) -> FetchEntry:
    try:
        pk = int(entry_id)
    except (TypeError, ValueError):
        raise NotFound(ENTRY_NOT_FOUND) from None
    entry = fetch_entries_visible(actor).select_related("job").filter(pk=pk).first()
    if entry is None:
        raise NotFound(ENTRY_NOT_FOUND)
    return entry
