"""PTR names of the sending sources in DMARC reports: looked up by a worker, kept in
SourceName, read by the dashboard. A page never waits for DNS.

A run takes the source IPs that have no name yet (or whose name is old), looks them up
concurrently through mailadmin.dns with a short timeout, and stores each answer: the name,
"no PTR record", or "lookup failed" (tried again sooner). It is started after a DMARC
report is ingested and by Celery beat, one run at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import dns.exception
import dns.resolver
import dns.reversename
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.reports.models import DmarcRecord, SourceName
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import Outcome, Progress, task_run_start
from mailadmin.dns import make_async_resolver

log = logging.getLogger(__name__)

SOURCE_NAMES_TASK = "reports.resolve_sources"
REFRESH_AFTER = timedelta(days=7)  # names change rarely
RETRY_ERRORS_AFTER = timedelta(hours=1)  # a failed lookup is tried again sooner
CONCURRENCY = 20


def _fresh() -> Q:
    now = timezone.now()
    return Q(status=SourceName.Status.ERROR, resolved_at__gte=now - RETRY_ERRORS_AFTER) | (
        ~Q(status=SourceName.Status.ERROR) & Q(resolved_at__gte=now - REFRESH_AFTER)
    )


def source_ips_pending(*, limit: int) -> list[str]:
    """Source IPs of DMARC records without a fresh name, at most `limit` of them."""
    known = SourceName.objects.filter(_fresh()).values("ip")
    return list(
        DmarcRecord.objects.exclude(source_ip=None)
        .exclude(source_ip__in=known)
        .values_list("source_ip", flat=True)
        .order_by()
        .distinct()[:limit]
    )


async def _lookup_all(ips: list[str], timeout: float) -> dict[str, tuple[str, str]]:
    resolver = make_async_resolver()
    resolver.lifetime = resolver.timeout = timeout
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(ip: str) -> tuple[str, tuple[str, str]]:
        async with gate:
            try:
                answer = await resolver.resolve(dns.reversename.from_address(ip), "PTR")
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                return ip, (SourceName.Status.NONE, "")
            except (dns.exception.DNSException, OSError, ValueError):
                return ip, (SourceName.Status.ERROR, "")
            names = sorted(str(r.target).rstrip(".").lower() for r in answer)
            return ip, (SourceName.Status.OK, names[0][:255] if names else "")

    return dict(await asyncio.gather(*(one(ip) for ip in ips)))


def source_names_resolve(ips: list[str]) -> dict[str, tuple[str, str]]:
    """Look up and store the PTR names of `ips`; returns {ip: (status, name)}."""
    if not ips:
        return {}
    found = asyncio.run(_lookup_all(ips, settings.MAILADMIN_REPORTS_PTR_TIMEOUT))
    now = timezone.now()
    SourceName.objects.bulk_create(
        [
            SourceName(ip=ip, status=status, name=name, resolved_at=now)
            for ip, (status, name) in found.items()
        ],
        update_conflicts=True,
        unique_fields=["ip"],
        update_fields=["name", "status", "resolved_at"],
    )
    return found


def source_names_resolve_run(
    *, progress: Progress, batch: int = 200, budget_seconds: float = 300.0
) -> Outcome:
    """The worker's side: batches of pending IPs until none is left or the time is up
    (beat starts the next run for the rest). Safe to repeat."""
    started = time.monotonic()
    done = named = 0
    progress.begin(0)
    while time.monotonic() - started < budget_seconds:
        ips = source_ips_pending(limit=batch)
        if not ips:
            break
        found = source_names_resolve(ips)
        done += len(found)
        named += sum(1 for status, _ in found.values() if status == SourceName.Status.OK)
        progress.step(done, f"{done} sources looked up, {named} named")
    return Outcome(True, f"{done} sources looked up, {named} named.", {"looked_up": done})


def source_names_resolve_start() -> TaskRun | None:
    """Start a run (or find the one under way) when some source has no fresh name."""
    if not source_ips_pending(limit=1):
        return None
    return _start_run()


def _start_run() -> TaskRun:
    return task_run_start(
        actor=None,
        kind=SOURCE_NAMES_TASK,
        title="Look up the names of report sources",
        task_name=SOURCE_NAMES_TASK,
        tenant_id=None,
    )


def source_names_after_ingest(report_ids: list[int]) -> None:
    """Called once per ingest (an upload, a message) with the DMARC reports it stored: once
    they are committed, start a lookup run when one of their sources has no fresh name and
    no run is under way (two small indexed queries per ingest, not per report: a large
    upload neither scans the table nor starts a run per report). A broker that is down
    must not fail an ingest that already succeeded: beat starts it later."""
    if not report_ids:
        return
    report_ids = list(report_ids)

    def start() -> None:
        try:
            known = SourceName.objects.filter(_fresh()).values("ip")
            unnamed = (
                DmarcRecord.objects.filter(report_id__in=report_ids)
                .exclude(source_ip=None)
                .exclude(source_ip__in=known)
            )
            under_way = TaskRun.objects.filter(kind=SOURCE_NAMES_TASK, state__in=TaskRun.UNFINISHED)
            if unnamed.exists() and not under_way.exists():
                _start_run()
        except Exception:
            log.warning("could not start the source name lookup", exc_info=True)

    transaction.on_commit(start)
