"""TLS-RPT reports POSTed to https: rua endpoints (RFC 8460 3) on a live loopback HTTPS
server with its own CA: the headers and the gzip body it receives, retries with backoff
recorded on the queued report (and shown by GET /api/queue/reports), certificate checks."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from apps.queue.models import QueuedMessage
from apps.reports import outgoing
from apps.reports.models import OutgoingReport
from apps.reports.services import record_tls_outcome
from tests.support.https_server import start_https_server
from tests.unit.reports.conftest import Steps

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 29)
BEGIN = datetime(2026, 11, 29, tzinfo=UTC)
HOST = "mx.ours.test"


@pytest.fixture(autouse=True)
def _us(settings):
    settings.MAILADMIN_HOSTNAME = HOST
    settings.MAILADMIN_REPORTS_ORG_NAME = "Ours Mail"
    settings.MAILADMIN_REPORTS_FROM = "noreply-reports@ours.test"


@pytest.fixture
def https_server(tmp_path, settings):
    state, server = start_https_server(tmp_path)
    settings.MAILADMIN_REPORTS_HTTPS_CA_BUNDLE = str(state.ca_file)
    settings.MAILADMIN_REPORTS_HTTPS_TIMEOUT = 5
    yield state
    server.shutdown()
    server.server_close()


def _report(dns_server, rua: str) -> OutgoingReport:
    dns_server.set_zone("_smtp._tls.rcpt.test", {"TXT": [f"v=TLSRPTv1; rua={rua}"]})
    for ok in (True, True, False):
        record_tls_outcome(recipient_domain="rcpt.test", mx_host="mx.rcpt.test", success=ok,
                           result_type="" if ok else "certificate-expired", policy_type="sts",
                           attempted_at=BEGIN + timedelta(hours=2))  # fmt: skip
    outgoing.outgoing_reports_generate(progress=Steps(), day=DAY)
    return OutgoingReport.objects.get()


def test_it_posts_the_report_and_retries_with_backoff(dns_server, https_server, api_root):
    url = https_server.url("/v1/tlsrpt")
    report = _report(dns_server, url)
    assert (report.recipients, report.endpoints) == ([], [url])
    assert report.deliveries[0]["status"] == "pending"

    https_server.statuses = [503]
    first = timezone.now() + timedelta(hours=2)
    assert outgoing.outgoing_reports_send(now=first) == {"sent": 0, "failed": 0}
    [item] = api_root.get("/api/queue/reports").json()["data"]["items"]
    assert item["status"] == "sending"
    retry_at = first + outgoing.HTTPS_BACKOFF[0]
    assert item["endpoints"] == [{
        "uri": url, "status": "pending", "attempts": 1, "http_status": 503,
        "error": "HTTP 503 Service Unavailable",
        "next_attempt_at": retry_at.astimezone(UTC).isoformat(), "sent_at": None,
    }]  # fmt: skip
    assert item["send_after"] == retry_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert api_root.delete(f"/api/queue/reports/{report.pk}").status_code == 409  # in flight

    # Not before the backoff: nothing is posted.
    assert outgoing.outgoing_reports_send(now=retry_at - timedelta(minutes=1))["sent"] == 0
    assert len(https_server.requests) == 1

    assert outgoing.outgoing_reports_send(now=retry_at) == {"sent": 1, "failed": 0}
    assert len(https_server.requests) == 2
    request = https_server.requests[-1]
    assert (request.method, request.path) == ("POST", "/v1/tlsrpt")
    assert request.headers["content-type"] == "application/tlsrpt+gzip"
    body = json.loads(gzip.decompress(request.body))
    assert body["report-id"] == report.report_id
    assert body["policies"][0]["summary"] == {
        "total-successful-session-count": 2, "total-failure-session-count": 1}  # fmt: skip
    assert body["policies"][0]["failure-details"][0]["result-type"] == "certificate-expired"

    report.refresh_from_db()
    assert report.status == "sent" and report.sent_at is not None
    assert report.queued_message_id is None and not QueuedMessage.objects.exists()  # no mailto
    [delivery] = report.deliveries
    assert (delivery["status"], delivery["attempts"], delivery["http_status"]) == ("sent", 2, 200)
    assert outgoing.outgoing_reports_send(now=retry_at + timedelta(days=1))["sent"] == 0
    assert len(https_server.requests) == 2  # never twice


def test_it_gives_up_after_the_last_backoff(dns_server, https_server, api_root):
    report = _report(dns_server, https_server.url("/r"))
    https_server.statuses = [500] * 10
    when = timezone.now() + timedelta(hours=2)
    for attempt in range(outgoing.MAX_HTTPS_ATTEMPTS):
        result = outgoing.outgoing_reports_send(now=when)
        if attempt < len(outgoing.HTTPS_BACKOFF):
            assert result == {"sent": 0, "failed": 0}
            when += outgoing.HTTPS_BACKOFF[attempt]
    assert result == {"sent": 0, "failed": 1}
    assert len(https_server.requests) == outgoing.MAX_HTTPS_ATTEMPTS
    report.refresh_from_db()
    assert report.status == "failed"
    assert report.error == f"{https_server.url('/r')}: HTTP 500 Internal Server Error"
    [item] = api_root.get("/api/queue/reports").json()["data"]["items"]
    assert (item["status"], item["endpoints"][0]["status"]) == ("failed", "failed")


def test_it_verifies_the_endpoint_s_certificate(dns_server, https_server, settings, tmp_path):
    report = _report(dns_server, https_server.url("/r"))
    settings.MAILADMIN_REPORTS_HTTPS_CA_BUNDLE = ""  # certifi's CAs: ours is not among them
    outgoing.outgoing_reports_send(now=timezone.now() + timedelta(hours=2))
    report.refresh_from_db()
    [delivery] = report.deliveries
    assert delivery["error"].startswith("TLS: ")
    assert "CERTIFICATE_VERIFY_FAILED" in delivery["error"]
    assert (delivery["status"], delivery["http_status"]) == ("pending", None)
    assert https_server.requests == []  # nothing was sent before the handshake failed


def test_mail_and_https_destinations_are_both_served(dns_server, https_server):
    url = https_server.url("/both")
    report = _report(dns_server, f"mailto:tls@rcpt.test,{url}")
    assert (report.recipients, report.endpoints) == (["tls@rcpt.test"], [url])
    assert outgoing.outgoing_reports_send(now=timezone.now() + timedelta(hours=2)) == {
        "sent": 1, "failed": 0}  # fmt: skip
    report.refresh_from_db()
    queued = QueuedMessage.objects.get(pk=report.queued_message_id)
    assert list(queued.recipients.values_list("address", flat=True)) == ["tls@rcpt.test"]
    assert gzip.decompress(https_server.requests[0].body) == gzip.decompress(bytes(report.payload))
