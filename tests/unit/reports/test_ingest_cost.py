"""What an ingest costs: a fixed number of queries per group of reports written together,
whatever their records, and the domain lookup and the PTR-lookup check once per upload,
not once per report; a group that cannot be written costs only the report at fault."""

from __future__ import annotations

import gzip

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from apps.reports import services
from apps.reports.models import DmarcRecord, IngestFailure, Report
from apps.reports.services import report_upload
from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def queries_per_group() -> int:
    """Reports of up to BATCH records are written in groups: a savepoint (a transaction
    outside tests), one INSERT of the report rows, their records (PostgreSQL COPYs them,
    which Django's query log does not see; SQLite one executemany), one INSERT of their
    audit events, the release (commit)."""
    return 5 if connection.vendor == "sqlite" else 4


def aggregate(report_id: str, records: int, *, domain: str = "example.com") -> bytes:
    rows = "".join(
        "<record><row>"
        f"<source_ip>192.0.2.{n % 250 + 1}</source_ip><count>{n + 1}</count>"
        "<policy_evaluated><disposition>none</disposition>"
        f"<dkim>{'pass' if n % 2 else 'fail'}</dkim><spf>fail</spf></policy_evaluated></row>"
        f"<identifiers><header_from>{domain}</header_from></identifiers>"
        f"<auth_results><dkim><domain>{domain}</domain><result>pass</result></dkim>"
        f"<spf><domain>{domain}</domain><result>fail</result></spf></auth_results></record>"
        for n in range(records)
    )
    return (
        "<?xml version='1.0'?><feedback><report_metadata><org_name>rep.example</org_name>"
        f"<email>dmarc@rep.example</email><report_id>{report_id}</report_id>"
        "<date_range><begin>1700000000</begin><end>1700086399</end></date_range>"
        f"</report_metadata><policy_published><domain>{domain}</domain><p>none</p>"
        f"</policy_published>{rows}</feedback>"
    ).encode()


def ingest(actor, files) -> tuple[int, list]:
    with CaptureQueriesContext(connection) as queries:
        results = report_upload(actor=actor, files=files, source="api")
    return len(queries), results


def test_an_upload_costs_the_same_queries_whatever_its_reports_and_records(
    admin_a, domain_a, monkeypatch
):
    ingest(admin_a, [("warm.xml", aggregate("warm", 1))])  # the actor's permissions, cached
    small, _ = ingest(admin_a, [(f"s{n}.xml", aggregate(f"s{n}", 1)) for n in range(3)])
    large, results = ingest(
        admin_a, [(f"l{n}.xml.gz", gzip.compress(aggregate(f"l{n}", 300))) for n in range(3)]
    )
    assert {r.status for r in results} == {"ingested"}
    assert large == small
    more, _ = ingest(admin_a, [(f"m{n}.xml", aggregate(f"m{n}", 5)) for n in range(6)])
    # Twice the reports: the same queries (one group); the domain is looked up once.
    assert more == small
    monkeypatch.setattr(services, "GROUP_REPORTS", 2)
    grouped, results = ingest(admin_a, [(f"g{n}.xml", aggregate(f"g{n}", 2)) for n in range(6)])
    assert [r.status for r in results] == ["ingested"] * 6
    assert grouped - small == 2 * queries_per_group()  # three groups of two
    assert DmarcRecord.objects.count() == 1 + 3 * 1 + 3 * 300 + 6 * 5 + 6 * 2
    assert AuditEvent.objects.filter(action="report.ingest").count() == 1 + 3 + 3 + 6 + 6


def test_a_group_that_cannot_be_written_is_written_one_by_one(admin_a, domain_a, monkeypatch):
    """A database error in a group's write (injected for one report's records) costs that
    report alone: it is kept as a failed ingest, the others are stored."""
    write_rows = services._write_rows

    def failing(rows):
        rows = list(rows)
        bad = Report.objects.filter(report_id="bad").values_list("pk", flat=True).first()
        if any(row[0] == bad for row in rows):
            raise DatabaseError("injected")
        write_rows(rows)

    monkeypatch.setattr(services, "_write_rows", failing)
    files = [("a.xml", aggregate("a", 2)), ("bad.xml", aggregate("bad", 3)),
             ("c.xml", aggregate("c", 4))]  # fmt: skip
    _, results = ingest(admin_a, files)
    assert [r.status for r in results] == ["ingested", "failed", "ingested"]
    assert results[1].reason == "The report could not be stored: DatabaseError."
    assert sorted(Report.objects.values_list("report_id", "record_count")) == [("a", 2), ("c", 4)]
    assert IngestFailure.objects.get().filename == "bad.xml"


def test_duplicates_in_one_upload_are_stored_once(admin_a, domain_a):
    data = aggregate("twice", 4)
    _, results = ingest(admin_a, [("a.xml", data), ("b.xml.gz", gzip.compress(data))])
    assert [r.status for r in results] == ["ingested", "duplicate"]
    assert results[0].id == results[1].id
    assert Report.objects.get().record_count == 4


def test_a_report_longer_than_a_batch_gets_the_same_row(admin_a, domain_a, monkeypatch):
    _, [whole] = ingest(admin_a, [("whole.xml", aggregate("whole", 7))])
    monkeypatch.setattr(services, "BATCH", 2)  # seven records: four batches
    _, [batched] = ingest(admin_a, [("batched.xml", aggregate("batched", 7))])
    fields = (
        "record_count", "message_count", "pass_count", "fail_count", "date_begin",
        "date_end", "policy", "details", "domain_id", "tenant_id",
    )  # fmt: skip
    one, other = (Report.objects.values(*fields).get(pk=r.id) for r in (whole, batched))
    assert one == other
    assert (one["record_count"], one["message_count"], one["pass_count"]) == (7, 28, 12)
    assert DmarcRecord.objects.filter(report_id=batched.id).count() == 7


def test_another_tenant_s_domain_is_not_filed_under_it_in_a_batch(admin_a, domain_a, domain_b):
    _, results = ingest(
        admin_a,
        [
            ("mine.xml", aggregate("mine", 1)),
            ("theirs.xml", aggregate("theirs", 1, domain="stalw.art")),
            ("theirs-again.xml", aggregate("theirs-again", 1, domain="stalw.art")),
        ],
    )
    assert [r.status for r in results] == ["ingested", "failed", "failed"]
    assert (
        results[1].reason
        == results[2].reason
        == ("The report is about stalw.art, which is not one of your domains.")
    )
    assert list(Report.objects.values_list("tenant_id", flat=True)) == [domain_a.tenant_id]
