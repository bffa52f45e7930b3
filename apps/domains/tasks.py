"""Celery tasks of the domains app: thin wrappers over apps.domains.services, built on the
task base (mailadmin.core.taskbase)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from apps.domains import mailbox_services, services
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import Outcome
from mailadmin.core.taskbase import RunContext, run_task


@run_task(name=services.DNS_CHECK_TASK, max_attempts=3, max_runtime=600)
def domain_dns_check_task(run: RunContext, *, domain_id: int) -> Outcome:
    """Check one domain's DNS, as whoever started the run (or the schedule). Safe to repeat
    from the start, so a run whose worker died is tried again."""
    return services.domain_dns_check_run(actor=run.actor, domain_id=domain_id, progress=run)


@run_task(name=services.DNS_CHECK_ALL_TASK, max_attempts=1, max_runtime=3600)
def domain_dns_check_all_task(run: RunContext) -> Outcome:
    """ "Check all": every domain its starter may see, with bounded concurrency."""
    return services.domain_dns_check_all_run(actor=run.actor, progress=run)


@shared_task(name="domains.dns_check_due", ignore_result=True)
def domains_dns_check_due_task() -> int:
    """Every minute: start the checks of the domains whose id % 60 is this minute."""
    return services.domain_dns_checks_schedule(minute=timezone.now().minute)


@run_task(name=services.DKIM_ROTATION_TASK, max_attempts=3, max_runtime=1800)
def dkim_rotation_task(run: RunContext) -> Outcome:
    """Advance the DKIM life cycle of every domain (safe to repeat from the start)."""
    return services.dkim_rotation_run(progress=run)


@shared_task(name="domains.dkim_rotation_due", ignore_result=True)
def dkim_rotation_due_task() -> str:
    """Beat, every 10 minutes: start the rotation run (or find the one under way)."""
    return str(services.dkim_rotation_start().pk)


@run_task(name=mailbox_services.IMPORT_TASK, max_attempts=1, max_runtime=3600)
def mailbox_import_task(run: RunContext, *, domain_id: int, rows: str) -> Outcome:
    """A CSV import of mailboxes: every row checked, then all written in one transaction.
    Once it is over the (sealed) rows, passwords included, are dropped from the run."""
    try:
        return mailbox_services.mailboxes_import_run(
            actor=run.actor, domain_id=domain_id, sealed_rows=rows, progress=run
        )
    finally:
        TaskRun.objects.filter(pk=run.id).update(arguments={"domain_id": domain_id})
