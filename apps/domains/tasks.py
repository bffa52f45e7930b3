"""Celery tasks of the domains app: thin wrappers over apps.domains.checks."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from apps.domains.checks import domain_dns_check_run, domains_due


@shared_task(name="domains.dns_check", ignore_result=True)
def domain_dns_check_task(run_id: str | None, domain_id: int) -> None:
    """Check one domain's DNS: for a TaskRun started from a page, or scheduled (run_id None)."""
    domain_dns_check_run(domain_id=domain_id, run_id=run_id)


@shared_task(name="domains.dns_check_due", ignore_result=True)
def domains_dns_check_due_task() -> int:
    """Every minute: one check task per domain whose id % 60 is this minute of the hour."""
    due = domains_due(minute=timezone.now().minute)
    for domain_id in due:
        domain_dns_check_task.delay(None, domain_id)
    return len(due)
