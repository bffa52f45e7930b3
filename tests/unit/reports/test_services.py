"""The ingest service as the mail flow will call it: a message that arrived at a domain's
report address is filed under the recipient's tenant, with no actor."""

from __future__ import annotations

import pytest

from apps.reports.models import IngestFailure, Report
from apps.reports.services import report_ingest_message
from mailadmin.core.models import AuditEvent
from tests.unit.reports.conftest import corpus_bytes

pytestmark = pytest.mark.django_db


def test_it_files_mail_under_the_recipient_s_tenant(domain_a, make_domain, tenant_a):
    sub = make_domain("mail.example.com", tenant=tenant_a)
    [result] = report_ingest_message(
        recipient_domain=domain_a,
        message=corpus_bytes("dmarc-aggregate/parsedmarc/aggregate/mimecast-weird-gzip.eml"),
    )
    assert result.status == "ingested"
    report = Report.objects.get(pk=result.id)
    # ab.id.au is not tenant A's domain: the report is A's, under no domain of it.
    assert (report.tenant_id, report.domain_id, report.domain_name, report.source) == (
        domain_a.tenant_id, None, "ab.id.au", "smtp")  # fmt: skip
    [mine] = report_ingest_message(
        recipient_domain=sub,
        message=corpus_bytes("dmarc-forensic/parsedmarc/dmarc_ruf_report_linkedin.eml"),
    )
    assert Report.objects.get(pk=mine.id).domain == domain_a  # names example.com
    event = AuditEvent.objects.filter(action="report.ingest").first()
    assert (event.actor_name, event.tenant_id) == ("system", domain_a.tenant_id)


def test_it_keeps_an_unreadable_message_for_the_recipient_s_tenant(domain_a):
    [result] = report_ingest_message(
        recipient_domain=domain_a, message=b"From: x@example.net\nSubject: hi\n\nhello\n"
    )
    assert result.status == "failed"
    failure = IngestFailure.objects.get(pk=result.id)
    assert (failure.tenant_id, failure.actor_id, failure.source) == (
        domain_a.tenant_id, None, "smtp")  # fmt: skip
    assert failure.reason == (
        "The message holds no report: no DMARC (XML), TLS-RPT (JSON) or ARF part."
    )


def test_it_never_lets_another_tenant_s_mail_reach_a_domain(domain_a, domain_b):
    # Mail to tenant B's report address about A's example.com stays B's, under no domain.
    [result] = report_ingest_message(
        recipient_domain=domain_b,
        message=corpus_bytes("dmarc-forensic/parsedmarc/dmarc_ruf_report_linkedin.eml"),
    )
    report = Report.objects.get(pk=result.id)
    assert (report.tenant_id, report.domain_id) == (domain_b.tenant_id, None)
