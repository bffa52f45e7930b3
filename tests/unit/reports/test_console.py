"""The reports pages: lists with filters, upload of several files (422 with the message
when none is chosen), one report of each type, failed ingests with their raw file, the
dashboard, deletion, tenant isolation (404) and pinned query counts."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.reports.models import IngestFailure, Report
from tests.unit.reports.conftest import corpus_bytes
from tests.unit.reports.test_api import (
    ARF_ABUSE,
    INVALID,
    LINKEDIN,
    NICE,
    OUTLOOK,
    TLS_MAILRU,
    ZOHO,
    _seed,
)

pytestmark = pytest.mark.django_db


def _file(rel: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(rel.rsplit("/", 1)[-1], corpus_bytes(rel))


@pytest.fixture
def console_a(client, admin_a):
    client.force_login(admin_a)
    return client


@pytest.fixture
def uploaded(console_a, domain_a):
    files = [_file(p) for p in (NICE, ZOHO, OUTLOOK, TLS_MAILRU, LINKEDIN, ARF_ABUSE, INVALID)]
    response = console_a.post("/reports/upload/", {"files": files})
    assert response.status_code == 200
    return response


def test_it_uploads_several_files_and_shows_each_result(uploaded):
    html = uploaded.content.decode()
    assert 'id="upload-results"' in html
    assert html.count('class="upload-ingested"') == 6
    assert html.count('class="upload-failed"') == 1
    assert "The XML is not well-formed: not well-formed (invalid token) (line 5, column 17)." in (
        html
    )
    assert Report.objects.filter(source="upload").count() == 6


def test_it_answers_422_when_no_file_is_chosen(console_a, domain_a):
    response = console_a.post("/reports/upload/", {}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "Choose at least one report file." in response.content.decode()


def test_it_lists_each_type_of_report(console_a, uploaded):
    dmarc = console_a.get("/reports/").content.decode()
    assert "zoho.com" in dmarc and "Outlook.com" in dmarc and "google.com" in dmarc
    assert "Mail.ru" in console_a.get("/reports/tls/").content.decode()
    arf = console_a.get("/reports/arf/").content.decode()
    assert "auth-failure" in arf and "abuse" in arf and "10.10.10.10" in arf
    filtered = console_a.get("/reports/?reporter=zoho&result=fail").content.decode()
    assert "zoho.com" in filtered and "Outlook.com" not in filtered
    bad = console_a.get("/reports/?from=yesterday").content.decode()
    assert "Invalid value for field from: &#x27;yesterday&#x27; is not a date (YYYY-MM-DD)." in bad


def test_it_answers_htmx_with_the_table_alone(console_a, uploaded):
    response = console_a.get("/reports/?reporter=zoho", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="report-table">')
    assert "zoho.com" in html


def test_it_shows_one_report_of_each_type(console_a, uploaded):
    dmarc = Report.objects.get(reporter="zoho.com")
    html = console_a.get(f"/reports/dmarc/{dmarc.pk}/").content.decode()
    assert "216.71.148.247" in html and 'id="dmarc-records"' in html
    tls = Report.objects.get(kind="tls")
    assert "sts-policy-fetch-error" in console_a.get(f"/reports/tls/{tls.pk}/").content.decode()
    failure = Report.objects.get(kind="dmarc-failure")
    html = console_a.get(f"/reports/arf/{failure.pk}/").content.decode()
    assert "delivery-result" in html and "Authentication-Results: mail516.prod.linkedin.com" in html
    assert console_a.get(f"/reports/tls/{dmarc.pk}/").status_code == 404  # wrong type


def test_it_lists_failed_ingests_and_serves_the_raw_file(console_a, uploaded):
    failure = IngestFailure.objects.get()
    html = console_a.get("/reports/failed/").content.decode()
    assert "invalid_xml.xml" in html and "not well-formed" in html
    raw = console_a.get(f"/reports/failed/{failure.pk}/raw/")
    assert raw.status_code == 200
    assert b"".join(raw.streaming_content) == corpus_bytes(INVALID)
    assert raw["Content-Disposition"] == 'attachment; filename="invalid_xml.xml"'
    assert raw["Content-Type"] == "application/octet-stream"


def test_it_shows_the_dashboard_with_sources_and_tls(console_a, uploaded, domain_a):
    html = console_a.get(f"/reports/dashboard/?domain={domain_a.pk}").content.decode()
    assert f'data-summary-url="/api/reports/dmarc/summary?domain={domain_a.pk}"' in html
    assert "216.71.148.247" in html  # a failing source, listed first
    assert "sts-policy-fetch-error" in html
    assert "vendor/chart-4.6.1.umd.min.js" in html
    summary = console_a.get(f"/api/reports/dmarc/summary?domain={domain_a.pk}").json()["data"]
    assert summary["daily"][0] == {"day": "2020-02-15", "pass": 0, "fail": 9}
    assert summary["alignment"] == {"both": 2636, "spfOnly": 1, "dkimOnly": 410, "none": 10}
    assert summary["sources"][0]["sourceIp"] == "216.71.148.247"


def test_it_deletes_a_report_and_a_failed_file(console_a, uploaded):
    report = Report.objects.get(reporter="zoho.com")
    response = console_a.post(f"/reports/dmarc/{report.pk}/delete/")
    assert response.status_code == 302
    assert not Report.objects.filter(pk=report.pk).exists()
    failure = IngestFailure.objects.get()
    assert console_a.post(f"/reports/failed/{failure.pk}/delete/").status_code == 302
    assert not IngestFailure.objects.exists()


def test_it_hides_another_tenant_s_reports(client, admin_b, uploaded, domain_a):
    client.force_login(admin_b)
    report = Report.objects.get(reporter="zoho.com")
    failure = IngestFailure.objects.get()
    for url in (
        f"/reports/dmarc/{report.pk}/",
        f"/reports/failed/{failure.pk}/raw/",
        f"/reports/dashboard/?domain={domain_a.pk}",
        f"/reports/?domain={domain_a.pk}",
    ):
        assert client.get(url).status_code == 404, url
    for url in (f"/reports/dmarc/{report.pk}/delete/", f"/reports/failed/{failure.pk}/delete/"):
        assert client.post(url).status_code == 404, url
    assert "zoho.com" not in client.get("/reports/").content.decode()
    assert "invalid_xml.xml" not in client.get("/reports/failed/").content.decode()
    assert Report.objects.filter(pk=report.pk).exists() and IngestFailure.objects.exists()


def test_it_refuses_the_pages_to_a_user_without_the_permission(client, user_a):
    client.force_login(user_a)
    assert client.get("/reports/").status_code == 403
    assert client.post("/reports/upload/", {}).status_code == 403


@pytest.mark.parametrize("url", ["/reports/", "/reports/tls/", "/reports/arf/"])
def test_it_renders_a_list_page_in_a_fixed_number_of_queries(console_a, domain_a, url):
    counts = []
    for size in (3, 120):
        Report.objects.all().delete()
        _seed(domain_a, size)
        with CaptureQueriesContext(connection) as queries:
            assert console_a.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[1] - counts[0] <= 1  # only the COUNT, once there is a second page
    assert counts[1] <= 10


def test_it_refuses_an_upload_over_the_limit_before_reading_it(console_a, domain_a, settings):
    """The console read every file whole (and stored large uploads in the database for a
    worker) whatever its size; the API had a cap."""
    settings.MAILADMIN_REPORTS_MAX_UPLOAD = 1024 * 1024
    files = [SimpleUploadedFile(f"r{i}.xml", b"<feedback>" + b" " * 600_000) for i in range(2)]
    response = console_a.post("/reports/upload/", {"files": files}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "The upload is larger than the 1 MB limit." in response.content.decode()
    assert not Report.objects.exists() and not IngestFailure.objects.exists()
