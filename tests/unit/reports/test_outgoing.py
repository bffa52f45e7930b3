"""Our own outgoing reports: recorded inbound authentication and outbound TLS outcomes,
the daily run building RFC 7489 / RFC 8460 reports for the domains whose DNS (the live
fixture) asks for them, the mail that carries them, and the queued-reports API."""

from __future__ import annotations

import email
import email.policy
import gzip
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from apps.queue.models import QueuedMessage
from apps.reports import outgoing
from apps.reports.models import InboundAuthResult, OutgoingReport, Report
from apps.reports.outgoing import DmarcVerdict
from apps.reports.services import record_inbound_auth, record_tls_outcome, report_upload
from apps.reports.tasks import reports_outgoing_task
from apps.store import blobs
from mailadmin.core.models import TaskRun
from tests.unit.reports.conftest import Steps

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 29)
BEGIN = datetime(2026, 11, 29, tzinfo=UTC)
END = BEGIN + timedelta(days=1)
HOST = "mx.ours.test"


@pytest.fixture(autouse=True)
def _us(settings):
    settings.MAILADMIN_HOSTNAME = HOST
    settings.MAILADMIN_REPORTS_ORG_NAME = "Ours Mail"
    settings.MAILADMIN_REPORTS_FROM = "noreply-reports@ours.test"


def _received(ip: str, header_from: str, *, ok: bool, at: datetime | None = None, **extra):
    return record_inbound_auth(
        source_ip=ip,
        envelope_from=f"bounce@{header_from}",
        spf_domain=header_from,
        spf_result="pass" if ok else "softfail",
        dkim_results=[
            {"domain": header_from, "selector": "s1", "result": "pass" if ok else "fail"}
        ],
        verdicts=[
            DmarcVerdict(
                header_from=header_from,
                result="pass" if ok else "fail",
                spf_aligned=ok,
                dkim_aligned=ok,
                disposition="none" if ok else "reject",
                **extra,
            )
        ],
        received_at=at or BEGIN + timedelta(hours=3),
    )


@pytest.fixture
def senders_dns(dns_server):
    dns_server.set_zone(
        "_dmarc.sender.test",
        {"TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@sender.test,mailto:agg@third.test!10m,"
                 "mailto:x@refuses.test"]},
    )  # fmt: skip
    dns_server.set_zone("sender.test._report._dmarc.third.test", {"TXT": ["v=DMARC1"]})
    dns_server.set_zone("_dmarc.quiet.test", {"TXT": ["v=DMARC1; p=none"]})  # no rua
    dns_server.set_zone("_dmarc.broken.test", "SERVFAIL")
    dns_server.set_zone(
        "_smtp._tls.rcpt.test",
        {"TXT": ["v=TLSRPTv1; rua=mailto:tls@rcpt.test,https://reports.rcpt.test/v1"]},
    )
    return dns_server


def test_it_records_one_row_per_header_from_domain():
    [row] = _received("192.0.2.1", "Sender.TEST", ok=True)
    assert (row.header_from, row.envelope_from, row.dmarc_result, row.dkim_aligned) == (
        "sender.test", "sender.test", "pass", "pass")  # fmt: skip
    rows = record_inbound_auth(
        source_ip="192.0.2.1",
        envelope_from="",
        spf_domain="helo.example",
        spf_scope="helo",
        spf_result="none",
        dkim_results=[],
        verdicts=[
            DmarcVerdict(header_from="a.test", result="fail", spf_aligned=False,
                         dkim_aligned=False, disposition="quarantine"),
            DmarcVerdict(header_from="b.test", result="temperror", spf_aligned=False,
                         dkim_aligned=False),
        ],
    )  # fmt: skip
    assert [(r.header_from, r.disposition, r.spf_scope, r.dmarc_result) for r in rows] == [
        ("a.test", "quarantine", "helo", "fail"), ("b.test", "none", "helo", "none")]  # fmt: skip
    failure = record_tls_outcome(
        recipient_domain="rcpt.test", mx_host="MX.rcpt.test.", success=False, result_type="odd"
    )
    assert (failure.mx_host, failure.result_type) == ("mx.rcpt.test", "validation-failure")


def test_it_builds_a_dmarc_report_for_the_sender_s_rua(senders_dns, superadmin):
    for _ in range(3):
        _received("192.0.2.10", "sender.test", ok=True)
    _received("198.51.100.7", "sender.test", ok=False)
    _received("198.51.100.7", "news.sender.test", ok=False)  # the org domain's record
    _received("192.0.2.10", "sender.test", ok=True, at=END + timedelta(hours=1))  # next day
    _received("192.0.2.20", "quiet.test", ok=True)
    _received("192.0.2.30", "broken.test", ok=False)

    outcome = outgoing.outgoing_reports_generate(progress=Steps(), day=DAY)
    assert outcome.message == (
        "2 reports queued for 2026-11-29, 1 domains ask for none, 1 DNS failures."
    )
    report = OutgoingReport.objects.get(policy_domain="sender.test")
    assert (
        report.filename
        == f"{HOST}!sender.test!{int(BEGIN.timestamp())}!{int(END.timestamp())}.xml.gz"
    )
    assert report.recipients == ["dmarc@sender.test", "agg@third.test"]  # refuses.test did not
    assert (report.kind, report.status, report.record_count, report.message_count) == (
        "dmarc", "queued", 2, 4)  # fmt: skip
    assert report.send_after > timezone.now() + timedelta(minutes=50)

    # Our own parser reads it back with the same figures.
    [result] = report_upload(actor=superadmin, files=[(report.filename, bytes(report.payload))])
    assert result.status == "ingested"
    read = Report.objects.get(pk=result.id)
    assert (read.reporter, read.domain_name, read.message_count, read.fail_count) == (
        "Ours Mail", "sender.test", 4, 1)  # fmt: skip
    assert (read.date_begin, read.date_end, read.policy["p"]) == (BEGIN, END, "reject")
    failing = read.dmarc_records.get(dmarc_pass=False)
    assert (failing.source_ip, failing.count, failing.disposition, failing.spf) == (
        "198.51.100.7", 1, "reject", "fail")  # fmt: skip
    assert failing.dkim_results == [{"domain": "sender.test", "selector": "s1", "result": "fail"}]

    sub = OutgoingReport.objects.get(policy_domain="news.sender.test")
    assert sub.recipients == ["dmarc@sender.test", "agg@third.test"]
    # Again: nothing new; quiet.test and broken.test are asked again.
    again = outgoing.outgoing_reports_generate(progress=Steps(), day=DAY)
    assert (
        again.message == "0 reports queued for 2026-11-29, 1 domains ask for none, 1 DNS failures."
    )
    assert OutgoingReport.objects.count() == 2


def test_it_builds_a_tls_report_for_the_recipient_domain_s_rua(senders_dns, superadmin):
    at = BEGIN + timedelta(hours=5)
    for _ in range(3):
        record_tls_outcome(recipient_domain="rcpt.test", mx_host="mx.rcpt.test", success=True,
                           policy_type="sts", policy_string=["version: STSv1", "mode: enforce"],
                           attempted_at=at)  # fmt: skip
    for _ in range(2):
        record_tls_outcome(
            recipient_domain="rcpt.test",
            mx_host="mx.rcpt.test",
            success=False,
            result_type="certificate-expired",
            policy_type="sts",
            policy_string=["version: STSv1", "mode: enforce"],
            sending_ip="192.0.2.1",
            receiving_ip="203.0.113.5",
            attempted_at=at,
        )
    record_tls_outcome(recipient_domain="nordns.test", mx_host="mx.nordns.test", success=True,
                       attempted_at=at)  # fmt: skip

    outgoing.outgoing_reports_generate(progress=Steps(), day=DAY)
    report = OutgoingReport.objects.get()
    assert (
        report.filename
        == f"{HOST}!rcpt.test!{int(BEGIN.timestamp())}!{int(END.timestamp())}.json.gz"
    )
    assert report.rua == ["mailto:tls@rcpt.test", "https://reports.rcpt.test/v1"]
    assert report.recipients == ["tls@rcpt.test"]
    assert report.endpoints == ["https://reports.rcpt.test/v1"]
    body = json.loads(gzip.decompress(bytes(report.payload)))
    assert body["date-range"] == {
        "start-datetime": "2026-11-29T00:00:00Z",
        "end-datetime": "2026-11-30T00:00:00Z",
    }
    [policy] = body["policies"]
    assert policy["policy"] == {
        "policy-type": "sts",
        "policy-domain": "rcpt.test",
        "policy-string": ["version: STSv1", "mode: enforce"],
        "mx-host": ["mx.rcpt.test"],
    }
    assert policy["summary"] == {
        "total-successful-session-count": 3, "total-failure-session-count": 2}  # fmt: skip
    assert policy["failure-details"] == [{
        "result-type": "certificate-expired", "failed-session-count": 2,
        "sending-mta-ip": "192.0.2.1", "receiving-mx-hostname": "mx.rcpt.test",
        "receiving-ip": "203.0.113.5"}]  # fmt: skip
    [result] = report_upload(actor=superadmin, files=[(report.filename, bytes(report.payload))])
    read = Report.objects.get(pk=result.id)
    assert (read.kind, read.message_count, read.fail_count) == ("tls", 5, 2)


def test_the_mail_has_the_rfc_subject_headers_and_file(senders_dns):
    _received("192.0.2.10", "sender.test", ok=True)
    record_tls_outcome(recipient_domain="rcpt.test", mx_host="mx.rcpt.test", success=True,
                       attempted_at=BEGIN + timedelta(hours=1))  # fmt: skip
    outgoing.outgoing_reports_generate(progress=Steps(), day=DAY)
    dmarc = OutgoingReport.objects.get(kind="dmarc")
    message = email.message_from_bytes(outgoing.report_message(dmarc), policy=email.policy.default)
    assert message["Subject"] == (
        f"Report Domain: sender.test Submitter: {HOST} Report-ID: <{dmarc.report_id}>"
    )
    assert (message["From"], message["To"]) == (
        "noreply-reports@ours.test", "dmarc@sender.test, agg@third.test")  # fmt: skip
    [attachment] = [p for p in message.walk() if p.get_filename()]
    assert attachment.get_content_type() == "application/gzip"
    assert attachment.get_filename() == dmarc.filename
    assert attachment.get_payload(decode=True) == bytes(dmarc.payload)

    tls = OutgoingReport.objects.get(kind="tls")
    raw = outgoing.report_message(tls)
    assert b"\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "tlsrpt"
    assert (message["TLS-Report-Domain"], message["TLS-Report-Submitter"]) == ("rcpt.test", HOST)
    [attachment] = [p for p in message.walk() if p.get_filename()]
    assert attachment.get_content_type() == "application/tlsrpt+gzip"
    assert attachment.get_filename() == tls.filename


def test_the_daily_run_is_on_the_task_base(senders_dns, django_capture_on_commit_callbacks):
    _received("192.0.2.10", "sender.test", ok=True)
    with django_capture_on_commit_callbacks(execute=False):
        run = outgoing.outgoing_reports_start(day=DAY)
        assert outgoing.outgoing_reports_start(day=DAY) == run  # one run per day
    assert (run.kind, run.arguments) == ("reports.outgoing:2026-11-29", {"day": "2026-11-29"})
    reports_outgoing_task(str(run.pk))
    run.refresh_from_db()
    assert run.state == TaskRun.State.SUCCESS
    assert run.message.startswith("1 reports queued for 2026-11-29")


# --- the queued-reports API -------------------------------------------------------------


@pytest.fixture
def queued(senders_dns):
    _received("192.0.2.10", "sender.test", ok=True)
    record_tls_outcome(recipient_domain="rcpt.test", mx_host="mx.rcpt.test", success=True,
                       attempted_at=BEGIN + timedelta(hours=1))  # fmt: skip
    outgoing.outgoing_reports_generate(progress=Steps(), day=DAY)
    return {r.kind: r for r in OutgoingReport.objects.all()}


def test_it_lists_queued_reports_in_the_spec_shape(api_root, queued):
    body = api_root.get("/api/queue/reports?limit=1").json()["data"]
    assert body["total"] == 2 and len(body["items"]) == 1
    items = api_root.get("/api/queue/reports").json()["data"]["items"]
    dmarc = next(i for i in items if i["type"] == "dmarc")
    assert dmarc == {
        "id": queued["dmarc"].pk,
        "type": "dmarc",
        "domain": "sender.test",
        "range_from": "2026-11-29T00:00:00Z",
        "range_to": "2026-11-30T00:00:00Z",
        "rua": ["mailto:dmarc@sender.test", "mailto:agg@third.test!10m", "mailto:x@refuses.test"],
        "recipients": ["dmarc@sender.test", "agg@third.test"],
        "endpoints": [],
        "report_id": queued["dmarc"].report_id,
        "file": queued["dmarc"].filename,
        "records": 1,
        "messages": 1,
        "status": "queued",
        "error": "",
        "created_at": dmarc["created_at"],
        "send_after": dmarc["send_after"],
        "sent_at": None,
        "queued_message_id": None,
        "attempts": 0,
    }
    detail = api_root.get(f"/api/queue/reports/{queued['tls'].pk}").json()["data"]
    assert detail["report"]["policies"][0]["policy"]["policy-domain"] == "rcpt.test"
    xml = api_root.get(f"/api/queue/reports/{queued['dmarc'].pk}").json()["data"]["report"]
    assert "<header_from>sender.test</header_from>" in xml


def test_it_cancels_a_queued_report_once(api_root, queued):
    url = f"/api/queue/reports/{queued['dmarc'].pk}"
    response = api_root.delete(url)
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "cancelled"
    again = api_root.delete(url)
    assert again.status_code == 409
    assert again.json()["detail"] == "The report is cancelled, not queued."
    assert api_root.delete("/api/queue/reports/999999").status_code == 404


def test_tenants_see_no_server_wide_reports(api_a, api_client_for, user_a, queued):
    listed = api_a.get("/api/queue/reports").json()["data"]
    assert (listed["items"], listed["total"]) == ([], 0)
    pk = queued["dmarc"].pk
    assert api_a.get(f"/api/queue/reports/{pk}").status_code == 404
    assert api_a.delete(f"/api/queue/reports/{pk}").status_code == 404
    assert api_client_for(user_a).get("/api/queue/reports").status_code == 403
    assert OutgoingReport.objects.get(pk=pk).status == "queued"


def test_it_lists_in_a_fixed_number_of_queries(api_root, queued, django_assert_max_num_queries):
    OutgoingReport.objects.bulk_create(
        OutgoingReport(kind="dmarc", policy_domain=f"d{i}.test", range_begin=BEGIN,
                       range_end=END, report_id=str(i), filename=f"f{i}", payload=b"x" * 1000)
        for i in range(300)
    )  # fmt: skip
    with django_assert_max_num_queries(6):
        assert len(api_root.get("/api/queue/reports?limit=100").json()["data"]["items"]) == 100


# --- handing reports to the outbound queue -----------------------------------------------


def test_due_reports_go_to_the_outbound_queue_once(queued, api_root):
    assert outgoing.outgoing_reports_send() == {"sent": 0, "failed": 0}  # not due
    api_root.delete(f"/api/queue/reports/{queued['tls'].pk}")  # cancelled: never sent
    later = timezone.now() + timedelta(hours=2)
    assert outgoing.outgoing_reports_send(now=later) == {"sent": 1, "failed": 0}
    report = OutgoingReport.objects.get(pk=queued["dmarc"].pk)
    assert report.status == "sent" and report.sent_at is not None
    queued_message = QueuedMessage.objects.get(pk=report.queued_message_id)
    assert queued_message.return_path == "noreply-reports@ours.test"
    assert sorted(queued_message.recipients.values_list("address", flat=True)) == [
        "agg@third.test", "dmarc@sender.test"]  # fmt: skip
    sent = email.message_from_bytes(
        blobs.read(queued_message.blob_hash), policy=email.policy.default
    )
    assert sent["Subject"] == (
        f"Report Domain: sender.test Submitter: {HOST} Report-ID: <{report.report_id}>"
    )
    [attachment] = [p for p in sent.walk() if p.get_filename()]
    assert attachment.get_filename() == report.filename
    assert attachment.get_payload(decode=True) == bytes(report.payload)
    assert outgoing.outgoing_reports_send(now=later)["sent"] == 0  # never twice
    assert OutgoingReport.objects.get(pk=queued["tls"].pk).status == "cancelled"
    item = api_root.get("/api/queue/reports").json()["data"]["items"]
    assert {i["status"] for i in item} == {"sent", "cancelled"}


def test_old_outcomes_are_purged_by_the_run(senders_dns):
    _received("192.0.2.10", "sender.test", ok=True, at=timezone.now() - timedelta(days=9))
    _received("192.0.2.10", "sender.test", ok=True, at=timezone.now())
    outgoing.outgoing_reports_generate(progress=Steps(), day=DAY)
    assert InboundAuthResult.objects.count() == 1


# --- the console page ---------------------------------------------------------------------


def test_the_console_lists_and_cancels_outgoing_reports(client, superadmin, admin_a, queued):
    client.force_login(superadmin)
    html = client.get("/reports/outgoing/").content.decode()
    assert queued["dmarc"].filename in html and "dmarc@sender.test, agg@third.test" in html
    assert 'href="/reports/outgoing/"' in client.get("/reports/").content.decode()  # the tab
    response = client.post(f"/reports/outgoing/{queued['dmarc'].pk}/cancel/")
    assert response.status_code == 302
    assert OutgoingReport.objects.get(pk=queued["dmarc"].pk).status == "cancelled"
    again = client.post(f"/reports/outgoing/{queued['dmarc'].pk}/cancel/", follow=True)
    assert "The report is cancelled, not queued." in again.content.decode()

    client.force_login(admin_a)  # a tenant admin: no server-wide reports, no tab
    html = client.get("/reports/outgoing/").content.decode()
    assert "No outgoing reports." in html and queued["tls"].filename not in html
    assert 'href="/reports/outgoing/"' not in client.get("/reports/").content.decode()
    assert client.post(f"/reports/outgoing/{queued['tls'].pk}/cancel/").status_code == 404
    assert OutgoingReport.objects.get(pk=queued["tls"].pk).status == "queued"
