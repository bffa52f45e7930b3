"""Our outgoing DMARC failure reports (RFC 7489 7.3, AFRF of RFC 6591): the fo options, the
hourly cap, the external-destination check, and the whole path on loopback — our MX
receives a message failing DMARC for a domain (on the live DNS fixture) whose ruf names a
remote address, the report goes through the outbound queue to that address's MX (the
SMTP sink), and our own feedback parser ingests what arrived."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import Principal, PrincipalType
from apps.queue import delivery, remote
from apps.queue.models import QueuedMessage, QueueDomain
from apps.reports import outgoing
from apps.reports.failure import fo_trigger
from apps.reports.models import OutgoingReport, Report
from apps.reports.outgoing import DmarcVerdict
from apps.reports.services import record_inbound_auth, report_upload
from apps.store.models import Message
from tests.support.smtp_listeners import connect

SECRET = b"The body stays here: account 12345, password hunter2."
FORGED = (
    b"From: Billing <billing@bad.test>\r\n"
    b"To: Jane <jane@example.test>\r\n"
    b"Subject: Your invoice\r\n"
    b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <invoice-7@bad.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n" + SECRET + b"\r\n"
)


@pytest.mark.parametrize(
    ("fo", "dmarc", "spf_al", "dkim_al", "spf", "dkim", "expected"),
    [
        ("0", "fail", False, False, "fail", "fail", "dmarc"),
        ("", "fail", False, False, "none", "none", "dmarc"),  # no fo: 0
        ("0", "pass", True, False, "pass", "fail", None),  # 0: only when both unaligned
        ("1", "pass", True, False, "pass", "fail", "dmarc"),  # 1: any unaligned
        ("1", "pass", True, True, "pass", "pass", None),
        ("d", "pass", True, False, "pass", "fail", "dkim"),
        ("d", "pass", True, False, "pass", "none", None),
        ("s", "pass", False, True, "fail", "pass", "spf"),
        ("d:s", "pass", False, True, "softfail", "pass", None),
        ("x:y", "fail", False, False, "fail", "none", "dmarc"),  # unknown options: 0
        ("1", "none", False, False, "none", "none", None),  # no DMARC evaluation
    ],
)
def test_fo_options_decide_which_failures_are_reported(fo, dmarc, spf_al, dkim_al, spf, dkim,
                                                      expected):  # fmt: skip
    assert fo_trigger(fo, dmarc_result=dmarc, spf_aligned=spf_al, dkim_aligned=dkim_al,
                      spf_result=spf, dkim_results=[{"domain": "x.test", "result": dkim}],
                      ) == expected  # fmt: skip


def _failing(domain: str, policy: dict, *, ok: bool = False, original: bytes = FORGED):
    return record_inbound_auth(
        source_ip="198.51.100.9",
        envelope_from=f"bounce@{domain}",
        spf_domain=domain,
        spf_result="pass" if ok else "fail",
        dkim_results=[{"domain": domain, "selector": "s1", "result": "fail"}],
        verdicts=[
            DmarcVerdict(header_from=domain, result="pass" if ok else "fail", spf_aligned=ok,
                         dkim_aligned=False, disposition="none" if ok else "quarantine",
                         policy=policy, record_domain=domain)
        ],
        original=original,
        authentication_results="Authentication-Results: mx.test;\r\n\tdmarc=fail",
    )  # fmt: skip


@pytest.mark.django_db
def test_it_queues_one_report_per_failing_message_up_to_the_hourly_cap(settings, api_root):
    settings.MAILADMIN_REPORTS_RUF_PER_HOUR = 2
    policy = {"v": "DMARC1", "p": "reject", "ruf": "mailto:ruf@bad.test"}
    for _ in range(3):
        _failing("bad.test", policy)
    _failing("bad.test", policy, ok=True)  # passes DMARC, fo=0: nothing
    _failing("other.test", {"p": "none"})  # no ruf: nothing
    _failing("quiet.test", {"p": "none", "ruf": "mailto:r@quiet.test"}, original=b"")
    report_about_a_report = (
        b"From: r@loop.test\r\nContent-Type: multipart/report;\r\n"
        b' report-type="feedback-report"; boundary="b"\r\n\r\n--b--\r\n'
    )
    _failing("loop.test", {"p": "none", "ruf": "mailto:r@loop.test"},
             original=report_about_a_report)  # fmt: skip
    reports = list(OutgoingReport.objects.filter(kind="failure"))
    assert [r.policy_domain for r in reports] == ["bad.test", "bad.test"]
    report = reports[0]
    assert (report.status, report.rua, report.recipients) == (
        "queued", ["mailto:ruf@bad.test"], [])  # fmt: skip
    assert report.send_after <= timezone.now()
    content = outgoing.report_content(report)
    assert content["headers"].startswith("From: Billing <billing@bad.test>\nTo: Jane")
    assert SECRET.decode() not in str(content)
    item = api_root.get(f"/api/queue/reports/{report.pk}").json()["data"]
    assert (item["type"], item["domain"], item["status"]) == ("failure", "bad.test", "queued")
    assert item["report"]["auth_failure"] == "dmarc"
    assert item["report"]["headers"] == content["headers"]
    # An hour later the cap is open again.
    OutgoingReport.objects.update(created_at=timezone.now() - timedelta(hours=1, seconds=1))
    _failing("bad.test", policy)
    assert OutgoingReport.objects.filter(kind="failure").count() == 3


@pytest.mark.django_db
def test_an_outside_ruf_address_must_accept_the_domain_s_reports(dns_server):
    policy = {"p": "reject", "ruf": "mailto:f@elsewhere.test,mailto:g@willing.test"}
    dns_server.set_zone("bad.test._report._dmarc.willing.test", {"TXT": ["v=DMARC1"]})
    _failing("bad.test", policy)
    assert outgoing.outgoing_reports_send() == {"sent": 1, "failed": 0}
    report = OutgoingReport.objects.get()
    assert report.recipients == ["g@willing.test"]
    queued = QueuedMessage.objects.get(pk=report.queued_message_id)
    assert list(queued.recipients.values_list("address", flat=True)) == ["g@willing.test"]

    OutgoingReport.objects.all().delete()
    _failing("bad.test", {"p": "reject", "ruf": "mailto:f@elsewhere.test"})
    assert outgoing.outgoing_reports_send() == {"sent": 0, "failed": 1}
    report = OutgoingReport.objects.get()
    assert (report.status, report.error) == (
        "failed", "No ruf address accepts reports for this domain (RFC 7489 7.1).")  # fmt: skip
    assert QueuedMessage.objects.count() == 1  # only the first report's


@pytest.mark.django_db
def test_a_dns_failure_is_tried_again_later(dns_server):
    dns_server.set_zone("bad.test._report._dmarc.elsewhere.test", "SERVFAIL")
    _failing("bad.test", {"p": "reject", "ruf": "mailto:f@elsewhere.test"})
    assert outgoing.outgoing_reports_send() == {"sent": 0, "failed": 0}
    report = OutgoingReport.objects.get()
    assert (report.status, report.attempts) == ("queued", 1)
    assert report.error.startswith("DNS: bad.test._report._dmarc.elsewhere.test")
    assert report.send_after > timezone.now() + timedelta(minutes=9)


# --- the whole path on loopback -------------------------------------------------------


@pytest.fixture
def hosted(make_principal, tenant_a, dns_server, smtp_sink, settings, tmp_path):
    settings.MAILADMIN_BLOB_DIR = str(tmp_path / "blobs")
    settings.MAILADMIN_REPORTS_FROM = "noreply-reports@mx.test"
    Principal.objects.create(name="example.test", type=PrincipalType.DOMAIN, tenant=tenant_a)
    jane = make_principal(name="jane", tenant=tenant_a)
    jane.emails.create(address="jane@example.test")
    dns_server.set_zone("bad.test", {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]})  # not us
    dns_server.set_zone(
        "_dmarc.bad.test",
        {"TXT": ["v=DMARC1; p=quarantine; ruf=mailto:forensic@collector.test; fo=1"]},
    )
    dns_server.set_zone("bad.test._report._dmarc.collector.test", {"TXT": ["v=DMARC1"]})
    dns_server.set_zone("collector.test", {"MX": [(10, "mx.collector.test.")]})
    dns_server.set_zone("mx.collector.test", {"A": ["127.0.0.1"]})
    settings.MAILADMIN_SMTP_REMOTE_PORT = smtp_sink.port
    remote.clear_mx_cache()
    remote.pool.close_all()
    delivery.clear_hosted_cache()
    yield jane
    remote.pool.close_all()
    remote.clear_mx_cache()


@pytest.mark.django_db(transaction=True)
def test_a_message_failing_dmarc_brings_the_sender_an_afrf_report(
    start_listeners, hosted, smtp_sink, superadmin
):
    inbound = start_listeners("inbound")
    with connect(inbound) as client:
        client.sendmail("billing@bad.test", ["jane@example.test"], FORGED)
    assert Message.objects.filter(principal=hosted).exists()  # quarantine: kept (Junk)
    report = OutgoingReport.objects.get(kind="failure")
    assert report.policy_domain == "bad.test"

    assert outgoing.outgoing_reports_send() == {"sent": 1, "failed": 0}
    report.refresh_from_db()
    entry = QueueDomain.objects.get(message_id=report.queued_message_id)
    assert delivery.deliver(entry.pk, drain=False) == 1
    [received] = smtp_sink.wait_for(1)
    assert (received.mail_from, received.rcpt_tos) == (
        "noreply-reports@mx.test", ["forensic@collector.test"])  # fmt: skip
    assert SECRET not in received.data

    sent = email.message_from_bytes(received.data, policy=email.policy.default)
    assert sent.get_content_type() == "multipart/report"
    assert sent.get_param("report-type") == "feedback-report"
    text, feedback, headers = sent.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert feedback.get_content_type() == "message/feedback-report"
    assert headers.get_content_type() == "text/rfc822-headers"
    assert b"Message-ID: <invoice-7@bad.test>" in headers.as_bytes()

    # Our own parser reads it as a DMARC failure report with the facts of the message.
    [result] = report_upload(actor=superadmin, files=[("failure.eml", received.data)])
    assert (result.status, result.type) == ("ingested", "dmarc-failure")
    stored = Report.objects.get(pk=result.id)
    assert (stored.domain_name, stored.reporter) == ("bad.test", "mx.test")
    fields = stored.details["fields"]
    assert fields["feedback-type"] == ["auth-failure"]
    assert fields["auth-failure"] == ["dmarc"]
    assert fields["source-ip"] == ["127.0.0.1"]
    assert fields["original-mail-from"] == ["<billing@bad.test>"]
    assert fields["delivery-result"] == ["spam"]
    assert fields["identity-alignment"] == ["none"]
    assert "dmarc=fail" in fields["authentication-results"][0]
    assert stored.details["original"]["subject"] == "Your invoice"
    assert stored.details["originalHeaders"].count("Message-ID: <invoice-7@bad.test>") == 1
    assert stored.date_begin.astimezone(UTC).date() == datetime.now(UTC).date()
