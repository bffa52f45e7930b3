"""The reports pages in Chromium: several files uploaded at once through the htmx form,
a large upload ingested by a real worker with live progress, and the dashboard drawing
its charts from the API with the vendored Chart.js, under the strict CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.reports.models import Report
from tests.conftest import TEST_PASSWORD, corpus_file
from tests.e2e.conftest import login, mark_document, same_document
from tests.support.worker import Worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FILES = [
    "dmarc-aggregate/parsedmarc/extract_report/nice-input.xml.gz",
    "dmarc-aggregate/parsedmarc/aggregate/zoho.com!example.com!1581753600!1581840000.xml",
    "tlsrpt/parsedmarc/mail.ru.json",
    "dmarc-forensic/parsedmarc/dmarc_ruf_report_linkedin.eml",
    "dmarc-aggregate/parsedmarc/aggregate/invalid_xml.xml",
]


def _paths() -> list[str]:
    return [str(corpus_file(*rel.split("/"))) for rel in FILES]


@pytest.fixture
def domain_a(make_principal, tenant_a):
    return make_principal(tenant=tenant_a, roles=(), name="example.com", type="domain", password="")


def test_it_uploads_several_files_and_charts_them(
    browser_page, page_problems, live_server, admin_a, domain_a
):
    page = browser_page
    login(page, live_server, "admin-a", TEST_PASSWORD)
    page.goto(f"{live_server.url}/reports/")
    mark_document(page)
    page.click("details.upload summary")
    page.set_input_files("#id_files", _paths())
    page.click("#upload-reports")
    results = page.locator("#upload-results")
    expect(results).to_be_visible()
    expect(results.locator("tr.upload-ingested")).to_have_count(4)
    expect(results.locator("tr.upload-failed")).to_contain_text(
        "The XML is not well-formed: not well-formed (invalid token) (line 5, column 17)."
    )
    assert same_document(page)  # htmx swapped the results in
    assert Report.objects.count() == 4

    page.goto(f"{live_server.url}/reports/dashboard/?domain={domain_a.pk}")
    charts = page.locator("#report-charts")
    expect(charts).to_have_attribute("data-loaded", "true")
    expect(charts).to_have_attribute("data-days", "2")
    assert page.evaluate(
        "Chart.getChart('chart-daily').data.datasets.map(d => d.data.reduce((a, b) => a + b))"
    ) == [3047, 9]
    assert page.locator("#chart-daily").bounding_box()["height"] > 50
    expect(page.locator("#dmarc-sources tbody tr").first).to_contain_text("216.71.148.247")
    assert page_problems == []


def test_it_ingests_a_large_upload_on_a_worker_with_live_progress(
    browser_page, page_problems, live_server, admin_a, domain_a, settings
):
    settings.MAILADMIN_REPORTS_ASYNC_UPLOAD = 1000
    worker = Worker().start()
    try:
        page = browser_page
        login(page, live_server, "admin-a", TEST_PASSWORD)
        page.goto(f"{live_server.url}/reports/")
        page.click("details.upload summary")
        page.set_input_files("#id_files", _paths())
        page.click("#upload-reports")
        progress = page.locator(".task-progress")
        expect(progress).to_be_visible()
        expect(progress).to_have_attribute("data-state", "success", timeout=30_000)
        expect(progress.locator(".task-message")).to_contain_text(
            "4 ingested, 0 duplicate, 1 failed."
        )
        expect(progress.locator("table.checks")).to_contain_text("invalid_xml.xml")
    finally:
        worker.stop()
    assert Report.objects.count() == 4
    assert page_problems == []
