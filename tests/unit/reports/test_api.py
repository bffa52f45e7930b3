"""The incoming report API: upload (raw or multipart), the three lists with filters and
capped totals, one report with its content, deletion, failed ingests, permissions,
tenant isolation (another tenant's report is 404) and pinned query counts."""

from __future__ import annotations

import gzip

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.reports.models import DmarcRecord, IngestFailure, Report
from mailadmin.core.models import AuditEvent
from tests.unit.reports.conftest import corpus_bytes

pytestmark = pytest.mark.django_db

NOT_FOUND = "The requested resource does not exist on this server."
GOOGLE_ZIP = "dmarc-aggregate/mail-auth/100.eml"  # stalw.art
NICE = "dmarc-aggregate/parsedmarc/extract_report/nice-input.xml"  # example.com, 20 records
NICE_GZ = "dmarc-aggregate/parsedmarc/extract_report/nice-input.xml.gz"
ZOHO = "dmarc-aggregate/parsedmarc/aggregate/zoho.com!example.com!1581753600!1581840000.xml"
OUTLOOK = (
    "dmarc-aggregate/parsedmarc/aggregate/protection.outlook.com!example.com!1711756800!"
    "1711843200.xml"
)
TLS_MAILRU = "tlsrpt/parsedmarc/mail.ru.json"  # example.com
TLS_NO_DOMAIN = "tlsrpt/mail-auth/rpt03.json"
LINKEDIN = "dmarc-forensic/parsedmarc/dmarc_ruf_report_linkedin.eml"  # example.com
ARF_ABUSE = "arf/sisimai/arf-02.eml"  # example.com
INVALID = "dmarc-aggregate/parsedmarc/aggregate/invalid_xml.xml"


def _data(response) -> list | dict:
    assert response.status_code == 200, response.content
    return response.json()["data"]


# --- upload ------------------------------------------------------------------------------


def test_it_ingests_a_raw_body_and_answers_one_result(api_a, domain_a):
    body = gzip.compress(corpus_bytes(NICE))
    response = api_a.post(
        "/api/reports/upload?filename=nice.xml.gz", body, content_type="application/gzip"
    )
    [result] = _data(response)
    report = Report.objects.get()
    assert result == {
        "file": "nice.xml.gz",
        "status": "ingested",
        "type": "dmarc",
        "id": report.pk,
        "reason": None,
    }
    assert (report.domain, report.tenant_id, report.source) == (domain_a, domain_a.tenant_id, "api")
    assert (report.reporter, report.report_id, report.record_count) == (
        "google.com", "11038226378739404135", 20)  # fmt: skip
    assert DmarcRecord.objects.filter(report=report).count() == 20
    event = AuditEvent.objects.get(action="report.ingest")
    assert (event.actor_name, event.tenant_id, event.changes["records"]) == (
        "admin-a", domain_a.tenant_id, 20)  # fmt: skip


def test_it_ingests_several_files_with_a_result_for_each(api_a, domain_a, upload):
    response = upload(api_a, NICE, NICE_GZ, TLS_MAILRU, LINKEDIN, INVALID, ("empty.xml", b""))
    results = _data(response)
    assert [(r["file"], r["status"], r["type"]) for r in results] == [
        ("nice-input.xml", "ingested", "dmarc"),
        ("nice-input.xml.gz", "duplicate", "dmarc"),
        ("mail.ru.json", "ingested", "tls"),
        ("dmarc_ruf_report_linkedin.eml", "ingested", "dmarc-failure"),
        ("invalid_xml.xml", "failed", None),
        ("empty.xml", "failed", None),
    ]
    assert results[1]["id"] == results[0]["id"]  # the report already stored
    assert results[4]["reason"] == (
        "The XML is not well-formed: not well-formed (invalid token) (line 5, column 17)."
    )
    assert results[5]["reason"] == "The file is empty."
    assert Report.objects.count() == 3
    failure = IngestFailure.objects.get(pk=results[4]["id"])
    assert bytes(failure.raw) == corpus_bytes(INVALID)  # kept raw, as received
    assert (failure.tenant_id, failure.filename) == (domain_a.tenant_id, "invalid_xml.xml")


def test_it_refuses_a_report_about_another_tenant_s_domain(api_a, domain_a, domain_b, upload):
    [result] = _data(upload(api_a, GOOGLE_ZIP))
    assert result["status"] == "failed"
    assert result["reason"] == "The report is about stalw.art, which is not one of your domains."
    assert not Report.objects.exists()
    # The failed file is tenant A's (the uploader's), not B's.
    assert IngestFailure.objects.get().tenant_id == domain_a.tenant_id


def test_it_files_a_report_naming_no_domain_under_the_chosen_one(api_a, domain_a, upload):
    [refused] = _data(upload(api_a, TLS_NO_DOMAIN))
    assert refused["reason"] == ("The report does not name its domain: upload it for one of yours.")
    [result] = _data(upload(api_a, TLS_NO_DOMAIN, domain="example.com"))
    assert result["status"] == "ingested"
    assert Report.objects.get(pk=result["id"]).domain == domain_a
    [other] = _data(upload(api_a, GOOGLE_ZIP, domain="example.com"))
    assert other["reason"] == "The report is about stalw.art, not example.com."


def test_it_keeps_reports_for_domains_nobody_hosts_for_superadmins(
    api_root, api_a, domain_a, upload
):
    [result] = _data(upload(api_root, GOOGLE_ZIP))  # stalw.art is not on this server
    report = Report.objects.get(pk=result["id"])
    assert (report.tenant_id, report.domain_id, report.domain_name) == (None, None, "stalw.art")
    assert _data(api_root.get("/api/reports/dmarc"))["total"] == 1
    assert _data(api_a.get("/api/reports/dmarc"))["total"] == 0


def test_it_answers_413_for_an_upload_over_the_cap(api_a, domain_a, settings):
    settings.MAILADMIN_REPORTS_MAX_UPLOAD = 1000
    response = api_a.post("/api/reports/upload", b"<" * 1001, content_type="text/xml")
    assert response.status_code == 413
    assert response.json()["detail"] == "The upload is larger than the 1000 bytes limit."


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        ({"data": b"", "content_type": "application/gzip"},
         "The request has no body: send a report as the body, or files as multipart file "
         "fields."),
        ({"data": {"other": "x"}, "format": "multipart"}, "Unrecognized field: other"),
        ({"data": {}, "format": "multipart"}, "Missing required field: file"),
        ({"data": b"\x00", "content_type": "multipart/form-data"},
         "Malformed multipart body: Invalid boundary in multipart: None"),
    ],
)  # fmt: skip
def test_it_says_what_is_wrong_with_an_upload_request(api_a, kwargs, detail):
    response = api_a.post("/api/reports/upload", **kwargs)
    assert response.status_code == 400
    assert response.json()["detail"] == detail


def test_it_refuses_upload_to_a_foreign_domain_with_404(api_a, domain_b, upload):
    response = upload(api_a, TLS_NO_DOMAIN, domain="stalw.art")
    assert response.status_code == 404
    assert response.json()["detail"] == NOT_FOUND


# --- lists ----------------------------------------------------------------------------------


@pytest.fixture
def reports_a(api_a, domain_a, upload):
    """Tenant A's reports: three aggregate, one TLS, one failure, one ARF."""
    results = _data(upload(api_a, NICE, ZOHO, OUTLOOK, TLS_MAILRU, LINKEDIN, ARF_ABUSE))
    assert [r["status"] for r in results] == ["ingested"] * 6
    return {r["file"]: r["id"] for r in results}


def test_it_lists_dmarc_reports_in_the_spec_shape(api_a, reports_a):
    data = _data(api_a.get("/api/reports/dmarc"))
    assert data["total"] == 3
    items = {item["reporter"]: item for item in data["items"]}
    assert set(items) == {"google.com", "zoho.com", "Outlook.com"}
    zoho = items["zoho.com"]
    assert zoho == {
        "id": reports_a["zoho.com!example.com!1581753600!1581840000.xml"],
        "type": "dmarc",
        "domain": "example.com",
        "domainId": zoho["domainId"],
        "reporter": "zoho.com",
        "reporterEmail": "noreply-dmarc@zoho.com",
        "reportId": "e2cb5d97-dcbb-470f-b2dd-45519a2abbb3",
        "dateRange": {"begin": "2020-02-15T08:00:00Z", "end": "2020-02-16T08:00:00Z"},
        "receivedAt": zoho["receivedAt"],
        "source": "api",
        "file": "zoho.com!example.com!1581753600!1581840000.xml",
        "policy": {"domain": "example.com", "adkim": "r", "aspf": "r", "p": "none",
                   "pct": "100", "fo": "0"},
        "recordCount": 8,
        "messages": 9,
        "passed": 0,
        "failed": 9,
    }  # fmt: skip
    # Newest period first.
    assert [i["reporter"] for i in data["items"]] == ["google.com", "Outlook.com", "zoho.com"]


def test_it_lists_tls_and_arf_reports(api_a, reports_a):
    [tls] = _data(api_a.get("/api/reports/tls"))["items"]
    assert (tls["reporter"], tls["policyCount"], tls["sessions"]) == (
        "Mail.ru", 1, {"successful": 0, "failed": 1})  # fmt: skip
    arf = _data(api_a.get("/api/reports/arf"))["items"]
    assert sorted((i["type"], i["feedbackType"]) for i in arf) == [
        ("arf", "abuse"), ("dmarc-failure", "auth-failure")]  # fmt: skip
    linkedin = next(i for i in arf if i["type"] == "dmarc-failure")
    assert (linkedin["sourceIp"], linkedin["reporter"], linkedin["domain"]) == (
        "10.10.10.10", "linkedin.com", "example.com")  # fmt: skip
    only = _data(api_a.get("/api/reports/arf?feedback-type=abuse"))["items"]
    assert [i["feedbackType"] for i in only] == ["abuse"]


@pytest.mark.parametrize(
    ("query", "reporters"),
    [
        ("reporter=zoho", ["zoho.com"]),
        ("reporter=GOOGLE", ["google.com"]),
        ("domain=example.com", ["google.com", "Outlook.com", "zoho.com"]),
        ("from=2021-01-01", ["google.com", "Outlook.com"]),
        ("from=2020-01-01&to=2020-02-15", ["zoho.com"]),  # 15-16 Feb overlaps the 15th
        ("to=2020-12-31", ["zoho.com"]),
        ("from=2024-03-31&to=2024-03-31", ["Outlook.com"]),  # ends at 00:00 on the 31st
        ("result=pass", ["google.com"]),  # every message passed
        ("result=fail", ["Outlook.com", "zoho.com"]),
    ],
)
def test_it_filters_the_dmarc_list(api_a, reports_a, query, reporters):
    items = _data(api_a.get(f"/api/reports/dmarc?{query}"))["items"]
    assert [i["reporter"] for i in items] == reporters


@pytest.mark.parametrize(
    ("query", "field", "detail"),
    [
        ("from=yesterday", "from",
         "Invalid value for field from: 'yesterday' is not a date (YYYY-MM-DD)."),
        ("to=2024-13-01", "to",
         "Invalid value for field to: '2024-13-01' is not a date (YYYY-MM-DD)."),
        ("to=", "to", "Invalid value for field to: '' is not a date (YYYY-MM-DD)."),
        ("to=2024-01-01T10:00:00Z", "to",
         "Invalid value for field to: '2024-01-01T10:00:00Z' is not a date (YYYY-MM-DD)."),
        ("result=maybe", "result", "Invalid value for field result: 'maybe' is not one of "
                                   "pass, fail."),
    ],
)  # fmt: skip
def test_it_names_the_bad_filter(api_a, query, field, detail):
    response = api_a.get(f"/api/reports/dmarc?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == detail
    assert body["errors"] == [{"field": field, "message": detail}]


def test_it_pages_and_caps_the_total(api_a, reports_a):
    first = _data(api_a.get("/api/reports/dmarc?limit=2"))
    assert (len(first["items"]), first["total"]) == (2, 3)
    second = _data(api_a.get("/api/reports/dmarc?limit=2&page=2"))
    assert [i["reporter"] for i in second["items"]] == ["zoho.com"]
    capped = _data(api_a.get("/api/reports/dmarc?limit=1&page=2&max-total=2"))
    assert capped["total"] == 2


# --- one report -----------------------------------------------------------------------------


def test_it_shows_a_dmarc_report_with_a_page_of_its_records(api_a, reports_a):
    report_id = reports_a["zoho.com!example.com!1581753600!1581840000.xml"]
    data = _data(api_a.get(f"/api/reports/dmarc/{report_id}?limit=3"))
    assert data["recordCount"] == 8
    assert data["records"]["total"] == 8
    assert len(data["records"]["items"]) == 3
    # Failing sources first, the busiest first among them.
    assert data["records"]["items"][0] == {
        "sourceIp": "216.71.148.247",
        "count": 2,
        "disposition": "none",
        "dkim": "fail",  # aligned DKIM failed (the signature passed, unaligned)
        "spf": "fail",
        "dmarc": "fail",
        "headerFrom": "example.com",
        "envelopeFrom": "",
        "envelopeTo": "",
        "reasons": [],
        "authResults": {
            "dkim": [{"domain": "example.com", "selector": "s1", "result": "pass"}],
            "spf": [{"domain": "example.com", "scope": "mfrom", "result": "pass"}],
        },
    }


def test_it_shows_tls_policies_and_feedback_fields(api_a, reports_a):
    tls = _data(api_a.get(f"/api/reports/tls/{reports_a['mail.ru.json']}"))
    [policy] = tls["policies"]
    assert (policy["policyType"], policy["policyDomain"], policy["failed"]) == (
        "sts", "example.com", 1)  # fmt: skip
    assert [d["result-type"] for d in policy["failureDetails"]] == [
        "sts-policy-fetch-error", "sts-policy-fetch-error"]  # fmt: skip
    arf = _data(api_a.get(f"/api/reports/arf/{reports_a['dmarc_ruf_report_linkedin.eml']}"))
    assert arf["fields"]["auth-failure"] == ["dmarc"]
    assert arf["fields"]["delivery-result"] == ["delivered"]
    assert "Authentication-Results: mail516.prod.linkedin.com" in arf["originalHeaders"]


def test_it_answers_404_for_a_report_under_the_wrong_type(api_a, reports_a):
    response = api_a.get(f"/api/reports/tls/{reports_a['nice-input.xml']}")
    assert response.status_code == 404


def test_it_deletes_one_report_and_its_records(api_a, reports_a):
    report_id = reports_a["nice-input.xml"]
    response = api_a.delete(f"/api/reports/dmarc/{report_id}")
    assert _data(response) is None
    assert not Report.objects.filter(pk=report_id).exists()
    assert not DmarcRecord.objects.filter(report_id=report_id).exists()
    assert AuditEvent.objects.filter(action="report.delete", object_id=str(report_id)).exists()
    assert api_a.get(f"/api/reports/dmarc/{report_id}").status_code == 404


def test_it_lists_and_deletes_failed_ingests(api_a, domain_a, upload):
    [result] = _data(upload(api_a, INVALID))
    [item] = _data(api_a.get("/api/reports/failed"))["items"]
    assert item == {
        "id": result["id"],
        "file": "invalid_xml.xml",
        "reason": result["reason"],
        "size": len(corpus_bytes(INVALID)),
        "source": "api",
        "receivedAt": item["receivedAt"],
        "uploadedBy": "admin-a",
    }
    assert _data(api_a.delete(f"/api/reports/failed/{result['id']}")) is None
    assert not IngestFailure.objects.exists()


# --- permissions and isolation ----------------------------------------------------------------


def test_it_hides_another_tenant_s_reports_with_404(api_a, api_b, reports_a, domain_a, upload):
    [failure] = _data(upload(api_a, INVALID))
    for group, report_id in (
        ("dmarc", reports_a["nice-input.xml"]),
        ("tls", reports_a["mail.ru.json"]),
        ("arf", reports_a["arf-02.eml"]),
    ):
        for method in ("get", "delete"):
            response = getattr(api_b, method)(f"/api/reports/{group}/{report_id}")
            assert response.status_code == 404, (group, method)
            assert response.json()["detail"] == NOT_FOUND
        assert _data(api_b.get(f"/api/reports/{group}"))["total"] == 0
    for method in ("get", "delete"):
        assert getattr(api_b, method)(f"/api/reports/failed/{failure['id']}").status_code == 404
    assert _data(api_b.get("/api/reports/failed"))["total"] == 0
    assert api_b.get("/api/reports/dmarc?domain=example.com").status_code == 404
    assert api_b.get(f"/api/reports/dmarc?domain={domain_a.pk}").status_code == 404
    assert Report.objects.count() == 6 and IngestFailure.objects.count() == 1


def test_it_refuses_a_user_without_report_permissions(api_client_for, user_a, reports_a, upload):
    api_user = api_client_for(user_a)
    for group in ("dmarc", "tls", "arf", "failed"):
        url = f"/api/reports/{group}"
        response = api_user.get(url)
        assert response.status_code == 403
        assert response.json()["detail"] == (
            "You do not have the permission 'incoming-report-list' needed for this."
        )
    response = upload(api_user, NICE)
    assert response.status_code == 403
    assert response.json()["permission"] == "incoming-report-create"
    report_id = reports_a["nice-input.xml"]
    assert api_user.get(f"/api/reports/dmarc/{report_id}").json()["permission"] == (
        "incoming-report-get"
    )
    assert api_user.delete(f"/api/reports/dmarc/{report_id}").json()["permission"] == (
        "incoming-report-delete"
    )


def test_it_asks_anonymous_callers_to_authenticate(anon_api):
    assert anon_api.get("/api/reports/dmarc").status_code == 401
    assert anon_api.post("/api/reports/upload", b"x", content_type="text/xml").status_code == 401


# --- query counts -------------------------------------------------------------------------------


def _seed(domain, count: int) -> None:
    Report.objects.bulk_create(
        Report(
            kind=kind,
            tenant_id=domain.tenant_id,
            domain=domain,
            domain_name=domain.name,
            reporter=f"r{i}",
            report_id=str(i),
            source="api",
            dedupe_key=f"{kind}-{i}",
            details={"feedbackType": "abuse"},
        )
        for i in range(count)
        for kind in ("dmarc", "tls", "arf")
    )


@pytest.mark.parametrize("group", ["dmarc", "tls", "arf"])
def test_it_lists_in_a_fixed_number_of_queries(api_a, domain_a, group):
    counts = []
    for size in (5, 300):
        Report.objects.all().delete()
        _seed(domain_a, size)
        with CaptureQueriesContext(connection) as queries:
            data = _data(api_a.get(f"/api/reports/{group}?limit=100"))
        assert data["total"] == size
        counts.append(len(queries))
    assert counts[0] <= counts[1] <= 6  # token+actor, roles, token use, page, count
    assert counts[1] - counts[0] <= 1  # the COUNT, needed once there is a second page


# --- large uploads: a worker ingests them ---------------------------------------------------


def test_it_hands_a_large_upload_to_a_worker_with_progress(
    api_a, api_b, admin_a, domain_a, upload, settings, django_capture_on_commit_callbacks
):
    from apps.reports.models import PendingUpload
    from apps.reports.tasks import reports_ingest_task
    from mailadmin.core.models import TaskRun

    settings.MAILADMIN_REPORTS_ASYNC_UPLOAD = 1000
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(api_a, NICE, NICE_GZ, INVALID)
    assert response.status_code == 202
    data = response.json()["data"]
    assert data["files"] == ["nice-input.xml", "nice-input.xml.gz", "invalid_xml.xml"]
    run = TaskRun.objects.get(pk=data["taskId"])
    assert (run.task_name, run.state, run.actor, run.tenant_id) == (
        "reports.ingest", "pending", admin_a, domain_a.tenant_id)  # fmt: skip
    assert len(callbacks) == 1  # the worker is woken once the upload is committed
    assert not Report.objects.exists() and PendingUpload.objects.count() == 3

    reports_ingest_task(str(run.pk))  # what the worker runs

    run.refresh_from_db()
    assert (run.state, run.done, run.total) == ("success", 3, 3)
    assert run.message == "1 ingested, 1 duplicate, 1 failed."
    assert [r["status"] for r in run.result["results"]] == ["ingested", "duplicate", "failed"]
    assert Report.objects.get().source == "api"
    assert not PendingUpload.objects.exists()
    polled = _data(api_a.get(f"/api/task/{run.pk}"))
    assert polled["result"]["results"][2]["reason"] == (
        "The XML is not well-formed: not well-formed (invalid token) (line 5, column 17)."
    )
    assert api_b.get(f"/api/task/{run.pk}").status_code == 404  # nor watch another's
