"""Sending sources: PTR names looked up by the worker on the live DNS fixture and kept in
the database, the dashboard's sources table (name, reporting orgs, failing first) and the
per-source page, scoped to the actor's reports, in a fixed number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.reports.models import DmarcRecord, Report, SourceName
from apps.reports.selectors import dmarc_sources
from apps.reports.sources import (
    SOURCE_NAMES_TASK,
    source_ips_pending,
    source_names_resolve_run,
    source_names_resolve_start,
)
from apps.reports.tasks import reports_resolve_sources_task
from mailadmin.core.models import TaskRun
from tests.unit.reports.conftest import Steps, corpus_bytes
from tests.unit.reports.test_api import ZOHO, _data

pytestmark = pytest.mark.django_db

FAILING = "216.71.148.247"
ZOHO_AGAIN = (
    "zoho-again.xml",
    corpus_bytes(ZOHO).replace(b"e2cb5d97", b"f3dc6ea8"),
)  # zoho's failing source


@pytest.fixture
def console_a(client, admin_a):
    client.force_login(admin_a)
    return client


@pytest.fixture
def zoho(api_a, domain_a, upload):
    [result] = _data(upload(api_a, ZOHO))
    return Report.objects.get(pk=result["id"])


def _serve_ptrs(dns_server) -> None:
    dns_server.set_zone("247.148.71.216.in-addr.arpa", {"PTR": ["mx1.Zoho.example."]})
    dns_server.set_zone("142.148.71.216.in-addr.arpa", "SERVFAIL")


def test_it_looks_up_ptr_names_in_a_run_and_keeps_them(zoho, dns_server):
    _serve_ptrs(dns_server)
    assert len(source_ips_pending(limit=100)) == 8
    outcome = source_names_resolve_run(progress=Steps())
    assert outcome.ok and outcome.message == "8 sources looked up, 1 named."
    names = {s.ip: (s.status, s.name) for s in SourceName.objects.all()}
    assert names[FAILING] == ("ok", "mx1.zoho.example")
    assert names["216.71.148.142"] == ("error", "")
    assert names["216.71.143.52"] == ("none", "")
    assert ("247.148.71.216.in-addr.arpa", "PTR") in dns_server.queries
    # Fresh names are not asked again; nothing is left to do.
    assert source_ips_pending(limit=100) == []
    assert source_names_resolve_start() is None


def test_the_task_on_the_task_base_carries_out_a_run(
    zoho, dns_server, django_capture_on_commit_callbacks
):
    _serve_ptrs(dns_server)
    with django_capture_on_commit_callbacks(execute=False):
        run = source_names_resolve_start()
    assert (run.kind, run.task_name, run.actor_id) == (SOURCE_NAMES_TASK, SOURCE_NAMES_TASK, None)
    reports_resolve_sources_task(str(run.pk))
    run.refresh_from_db()
    assert (run.state, run.message) == (TaskRun.State.SUCCESS, "8 sources looked up, 1 named.")
    assert SourceName.objects.get(ip=FAILING).name == "mx1.zoho.example"


def test_an_ingest_starts_the_lookup_after_commit(
    api_a, domain_a, upload, django_capture_on_commit_callbacks
):
    def ingest(rel: str) -> None:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            upload(api_a, rel)
        for callback in callbacks:  # the lookup starts only once the report is committed
            if "source_names" in getattr(callback, "__qualname__", ""):
                callback()

    ingest(ZOHO)
    [run] = TaskRun.objects.filter(kind=SOURCE_NAMES_TASK)
    TaskRun.objects.filter(pk=run.pk).update(state=TaskRun.State.SUCCESS)
    SourceName.objects.bulk_create(
        SourceName(ip=ip, status="ok", name="x.example") for ip in source_ips_pending(limit=100)
    )
    again = corpus_bytes(ZOHO).replace(b"e2cb5d97", b"f3dc6ea8")  # another report id
    ingest(("zoho-again.xml", again))  # the same sources, all named: no new run
    assert Report.objects.count() == 2
    assert TaskRun.objects.filter(kind=SOURCE_NAMES_TASK).count() == 1


def test_the_dashboard_lists_sources_with_name_and_reporting_org(
    console_a, zoho, dns_server, domain_a
):
    _serve_ptrs(dns_server)
    source_names_resolve_run(progress=Steps())
    html = console_a.get(f"/reports/dashboard/?domain={domain_a.pk}").content.decode()
    assert "mx1.zoho.example" in html
    assert f'href="/reports/dashboard/sources/{FAILING}/?domain={domain_a.pk}"' in html
    [first, *_] = dmarc_sources(actor=console_a_user(console_a), domain=domain_a)
    assert (first["sourceIp"], first["name"], first["reportingOrgs"], first["fail"]) == (
        FAILING, "mx1.zoho.example", ["zoho.com"], 2)  # fmt: skip


def console_a_user(client):
    from apps.accounts.models import Principal

    return Principal.objects.get(pk=client.session["_auth_user_id"])


def test_the_source_page_shows_its_records_failing_first(console_a, zoho, domain_a):
    SourceName.objects.create(ip=FAILING, name="mx1.zoho.example", status="ok")
    response = console_a.get(f"/reports/dashboard/sources/{FAILING}/?domain={domain_a.pk}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "mx1.zoho.example" in html
    assert "2 in 1 report · 0 passed DMARC" in html
    assert f'href="/reports/dmarc/{zoho.pk}/"' in html
    # Paging within the page swaps the records only.
    DmarcRecord.objects.bulk_create(
        DmarcRecord(report=zoho, source_ip=FAILING, count=1, dmarc_pass=True) for _ in range(120)
    )
    second = console_a.get(f"/reports/dashboard/sources/{FAILING}/?page=2", HTTP_HX_REQUEST="true")
    html = second.content.decode()
    assert html.lstrip().startswith('<section id="source-records">')
    assert "Page 2 of 2 · 121 in all" in html
    assert console_a.get("/reports/dashboard/sources/not-an-ip/").status_code == 404
    assert console_a.get("/reports/dashboard/sources/192.0.2.99/").status_code == 404


def test_it_hides_another_tenant_s_sources(client, admin_b, zoho, domain_a):
    client.force_login(admin_b)
    assert client.get(f"/reports/dashboard/sources/{FAILING}/").status_code == 404
    assert FAILING not in client.get("/reports/dashboard/").content.decode()
    summary = client.get("/api/reports/dmarc/summary").json()["data"]
    assert summary["sources"] == []


def _seed_records(report: Report, count: int) -> None:
    DmarcRecord.objects.bulk_create(
        DmarcRecord(report=report, source_ip=f"198.51.{i // 250}.{i % 250}", count=i + 1)
        for i in range(count)
    )
    SourceName.objects.bulk_create(
        SourceName(ip=f"198.51.{i // 250}.{i % 250}", name=f"h{i}.example", status="ok")
        for i in range(0, count, 2)
    )


def test_the_dashboard_and_the_source_page_cost_fixed_queries(console_a, zoho, domain_a):
    counts = []
    for size in (150, 400):  # both fill a page: the capped count runs in both
        DmarcRecord.objects.filter(report=zoho).exclude(source_ip=FAILING).delete()
        SourceName.objects.all().delete()
        _seed_records(zoho, size)
        DmarcRecord.objects.bulk_create(
            DmarcRecord(report=zoho, source_ip=FAILING, count=1) for _ in range(size)
        )
        with CaptureQueriesContext(connection) as dashboard:
            assert console_a.get(f"/reports/dashboard/?domain={domain_a.pk}").status_code == 200
        with CaptureQueriesContext(connection) as source:
            page = console_a.get(f"/reports/dashboard/sources/{FAILING}/")
            assert page.status_code == 200
        counts.append((len(dashboard), len(source)))
    assert counts[0] == counts[1], counts
    assert counts[0][1] <= 8, counts
