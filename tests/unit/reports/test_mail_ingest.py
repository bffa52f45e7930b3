"""Mail to a hosted domain's report addresses: resolve() recognises them and the one
delivery entry point (store.recipients.deliver_resolutions) ingests the real corpus mails
as reports of the receiving domain's tenant, never storing them in a mailbox."""

from __future__ import annotations

import pytest

from apps.accounts.models import PrincipalEmail
from apps.reports.models import IngestFailure, Report
from apps.store import recipients
from apps.store.models import Message
from apps.store.recipients import Resolution
from tests.unit.reports.conftest import corpus_bytes

pytestmark = pytest.mark.django_db


def test_it_resolves_the_report_addresses_of_a_hosted_domain(domain_a, domain_b):
    for address in ("dmarc-reports@example.com", "DMARC-Reports@Example.com"):
        resolution = recipients.resolve(address)
        assert resolution == Resolution(
            address="dmarc-reports@example.com", known=True, ingest_reports=True
        )
        assert resolution.domain == domain_a
        assert resolution.mailboxes == []
    assert recipients.resolve("tls-reports@stalw.art").domain == domain_b
    assert recipients.resolve("tls-reports@elsewhere.example") is None
    assert recipients.resolve("dmarc-report@example.com").known is False


def test_it_follows_the_configured_local_parts(settings, domain_a):
    settings.MAILADMIN_DMARC_REPORT_LOCALPART = "rua"
    settings.MAILADMIN_TLSRPT_REPORT_LOCALPART = "tlsrpt"
    assert recipients.resolve("rua@example.com").ingest_reports
    assert recipients.resolve("tlsrpt@example.com").ingest_reports
    assert recipients.resolve("dmarc-reports@example.com").known is False


def test_it_takes_report_addresses_before_an_owner(make_principal, tenant_a, domain_a):
    jane = make_principal(tenant=tenant_a, roles=(), name="jane", password="")
    PrincipalEmail.objects.create(principal=jane, address="dmarc-reports@example.com")
    resolution = recipients.resolve("dmarc-reports@example.com")
    assert resolution.ingest_reports and resolution.mailboxes == []


def test_it_ingests_a_google_aggregate_report_mail_for_the_domain_s_tenant(domain_a, domain_b):
    data = corpus_bytes("dmarc-aggregate/mail-auth/100.eml")
    assert recipients.deliver_to_address("dmarc-reports@stalw.art", data) == []
    report = Report.objects.get()
    assert (report.kind, report.tenant_id, report.domain, report.source) == (
        "dmarc", domain_b.tenant_id, domain_b, "smtp")  # fmt: skip
    assert (report.reporter, report.report_id, report.record_count) == (
        "google.com", "5264580628977113351", 1)  # fmt: skip
    record = report.dmarc_records.get()
    assert (record.source_ip, record.count, record.dkim, record.spf) == (
        "2a01:4f9:c011:b43c::1", 1, "pass", "pass")  # fmt: skip
    assert not Message.objects.exists()
    # The same mail again (a reporter retrying) is stored once.
    delivered = recipients.deliver_resolutions(
        [recipients.resolve("dmarc-reports@stalw.art")], data
    )
    assert [r.status for r in delivered.reports] == ["duplicate"]
    assert Report.objects.count() == 1


def test_it_ingests_tls_and_arf_mails(domain_a, domain_b):
    [tls] = recipients.deliver_resolutions(
        [recipients.resolve("tls-reports@stalw.art")],
        corpus_bytes("tlsrpt/mail-auth/rpt01.eml"),
    ).reports
    report = Report.objects.get(pk=tls.id)
    # company-y.example is not hosted: tenant B's report, under no domain.
    assert (report.kind, report.tenant_id, report.domain_id) == ("tls", domain_b.tenant_id, None)
    assert (report.reporter, report.message_count, report.fail_count) == ("Company-X", 5629, 303)

    [arf] = recipients.deliver_resolutions(
        [recipients.resolve("dmarc-reports@example.com")],
        corpus_bytes("arf/sisimai/arf-01.eml"),
    ).reports
    feedback = Report.objects.get(pk=arf.id)
    assert (feedback.tenant_id, feedback.details["sourceIp"]) == (domain_a.tenant_id, "192.0.2.89")


def test_it_keeps_a_message_without_a_report_as_a_failed_ingest(domain_a):
    spam = b"From: x@example.net\r\nTo: dmarc-reports@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    assert recipients.deliver_to_address("dmarc-reports@example.com", spam) == []
    failure = IngestFailure.objects.get()
    assert (failure.tenant_id, failure.source, bytes(failure.raw)) == (
        domain_a.tenant_id, "smtp", spam)  # fmt: skip
    assert not Report.objects.exists() and not Message.objects.exists()


def test_it_delivers_mailboxes_and_report_addresses_of_one_message(
    make_principal, tenant_a, domain_a
):
    jane = make_principal(tenant=tenant_a, roles=(), name="jane", password="")
    PrincipalEmail.objects.create(principal=jane, address="jane@example.com")
    data = corpus_bytes("dmarc-aggregate/mail-auth/100.eml")
    delivered = recipients.deliver_resolutions(
        [
            recipients.resolve("jane@example.com"),
            recipients.resolve("dmarc-reports@example.com"),
            recipients.resolve("tls-reports@example.com"),  # same domain: ingested once
        ],
        data,
    )
    assert [m.principal for m in delivered.stored] == [jane]
    assert [r.status for r in delivered.reports] == ["ingested"]
    assert Report.objects.get().tenant_id == tenant_a.pk


def test_a_report_address_at_a_domain_alias_is_the_aliased_domain_s(admin_a, domain_a):
    from apps.domains.mailbox_services import domain_alias_create

    domain_alias_create(actor=admin_a, domain=domain_a, alias="example.net")
    resolution = recipients.resolve("dmarc-reports@example.net")
    assert resolution.ingest_reports and resolution.domain == domain_a
    recipients.deliver_to_address(
        "dmarc-reports@example.net", corpus_bytes("dmarc-aggregate/mail-auth/100.eml")
    )
    assert Report.objects.get().tenant_id == domain_a.tenant_id
