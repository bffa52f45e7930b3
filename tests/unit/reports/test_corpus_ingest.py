"""Every report file of the corpus, uploaded through the API, ends up stored (or recognised
as a duplicate) with the records, counts and auth results parsedmarc 11 extracts; only
the two malformed files fail, kept raw with their reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.reports.models import IngestFailure, Report
from apps.reports.parsing import ReportError, parse_all
from tests.conftest import CORPUS_DIR, corpus_file

pytestmark = pytest.mark.django_db

EXPECTED = json.loads((Path(__file__).parent / "data" / "parsedmarc_corpus.json").read_text())
FOLDERS = ("dmarc-aggregate", "dmarc-forensic", "arf", "tlsrpt")


def _files() -> list[Path]:
    if not CORPUS_DIR.is_dir():
        corpus_file("README.md")  # skips locally, fails in CI
    return sorted(p for f in FOLDERS for p in (CORPUS_DIR / f).rglob("*") if p.is_file())


def test_it_ingests_every_report_of_the_corpus(api_root, domain_a, upload):
    results = {}
    for path in _files():
        rel = str(path.relative_to(CORPUS_DIR))
        results[rel] = upload(api_root, rel).json()["data"]

    # The oracle: a report is new unless the same reporter sent the same report id before
    # for the same tenant (example.com's reports are tenant A's, the others nobody's).
    seen: dict[tuple, str] = {}
    duplicates = {}
    for rel in results:
        try:
            parsed = parse_all(corpus_file(*rel.split("/")).read_bytes(), name="x")
        except ReportError:
            continue
        for item in parsed:
            report = item.report
            reporter = getattr(report, "meta", None)
            reporter = reporter.reporter if reporter else getattr(report, "reporter", "")
            if not reporter:
                reporter = report.org_name
            about = getattr(report, "meta", report).domain
            tenant = "a" if about == "example.com" or about.endswith(".example.com") else ""
            key = (item.type, tenant, reporter.lower(), getattr(report, "meta", report).report_id)
            if key in seen:
                duplicates[rel] = seen[key]
            else:
                seen[key] = rel

    statuses = {rel: [r["status"] for r in answer] for rel, answer in results.items()}
    assert {rel for rel, s in statuses.items() if s == ["failed"]} == {
        "dmarc-aggregate/parsedmarc/empty.xml",
        "dmarc-aggregate/parsedmarc/aggregate/invalid_xml.xml",
    }
    assert {rel for rel, s in statuses.items() if s == ["duplicate"]} == set(duplicates)
    assert all(len(s) == 1 for s in statuses.values())  # one report per corpus file
    assert len(results) == 102
    assert len(duplicates) == 24  # e.g. the same report as .xml, .xml.gz and .xml.zip
    assert Report.objects.count() == 102 - 24 - 2
    assert IngestFailure.objects.count() == 2

    # What was stored matches what parsedmarc reads (see test_parsing for the records).
    for rel, answer in results.items():
        expected = EXPECTED.get(rel, {})
        if answer[0]["status"] != "ingested" or "type" not in expected:
            continue
        report = Report.objects.get(pk=answer[0]["id"])
        if expected["type"] == "dmarc":
            assert report.record_count == expected["recordCount"], rel
            assert report.message_count == expected["messages"], rel
            assert report.dmarc_records.count() == expected["recordCount"], rel
            ips = sorted(r[0] or "" for r in expected.get("records", []))
            if ips:
                stored = report.dmarc_records.values_list("source_ip", flat=True)
                assert sorted(ip or "" for ip in stored) == ips, rel
        elif expected["type"] == "tls":
            policies = expected["policies"]
            assert report.pass_count == sum(p[2] for p in policies), rel
            assert report.fail_count == sum(p[3] for p in policies), rel
        else:
            assert report.details["sourceIp"] == expected["sourceIp"], rel
            assert report.details["feedbackType"] == expected["feedbackType"], rel

    # Reports about example.com are tenant A's; the rest (domains nobody hosts here) are
    # kept for superadmins.
    about_a = Report.objects.filter(domain=domain_a)
    assert about_a.exclude(tenant_id=domain_a.tenant_id).count() == 0
    assert about_a.count() == 27
    assert Report.objects.filter(domain=None, tenant=None).exclude(domain_name="example.com")
