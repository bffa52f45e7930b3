"""Retention: reports and failed ingests older than MAILADMIN_REPORTS_RETENTION_DAYS are
purged by a daily task, in batches; younger ones and the setting 0 keep everything."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.reports.models import DmarcRecord, IngestFailure, Report
from apps.reports.services import reports_purge
from apps.reports.tasks import reports_purge_task
from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def _report(domain, *, age_days: int, n: int) -> Report:
    report = Report.objects.create(
        kind="dmarc",
        tenant_id=domain.tenant_id,
        domain=domain,
        reporter="r",
        report_id=str(n),
        source="api",
        dedupe_key=f"k{n}",
        received_at=timezone.now() - timedelta(days=age_days),
    )
    DmarcRecord.objects.create(report=report, source_ip="192.0.2.1", count=1)
    return report


def _failure(*, age_days: int) -> IngestFailure:
    return IngestFailure.objects.create(
        source="api",
        reason="x",
        raw=b"x",
        received_at=timezone.now() - timedelta(days=age_days),
    )


def test_it_purges_what_is_older_than_the_retention(domain_a, settings):
    settings.MAILADMIN_REPORTS_RETENTION_DAYS = 30
    old = [_report(domain_a, age_days=31, n=i) for i in range(5)]
    young = _report(domain_a, age_days=29, n=99)
    _failure(age_days=40)
    kept_failure = _failure(age_days=1)
    outcome = reports_purge_task.apply().get()
    assert outcome == {"reports": 5, "failures": 1, "finished": True}
    assert list(Report.objects.all()) == [young]
    assert list(IngestFailure.objects.all()) == [kept_failure]
    assert DmarcRecord.objects.filter(report__in=[r.pk for r in old]).count() == 0
    event = AuditEvent.objects.get(action="report.purge")
    assert (event.actor_name, event.interface, event.changes["reports"]) == ("system", "task", 5)


def test_it_works_in_batches_and_stops_at_its_time_budget(domain_a):
    for i in range(7):
        _report(domain_a, age_days=400, n=i)
    outcome = reports_purge(days=365, batch=3, budget_seconds=0)
    assert (outcome.reports, outcome.finished) == (3, False)  # one batch, then out of time
    assert reports_purge(days=365, batch=3).reports == 4


def test_it_keeps_everything_when_retention_is_zero(domain_a):
    _report(domain_a, age_days=10_000, n=1)
    assert reports_purge(days=0).reports == 0
    assert Report.objects.count() == 1


def test_it_is_scheduled_daily_on_the_reports_queue():
    entry = settings.CELERY_BEAT_SCHEDULE["reports-purge"]
    assert entry["task"] == "reports.purge"
    assert settings.CELERY_TASK_ROUTES["reports.purge"] == {"queue": "reports"}
    assert settings.MAILADMIN_REPORTS_RETENTION_DAYS == 365  # the documented default
