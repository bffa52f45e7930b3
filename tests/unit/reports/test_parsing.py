"""Report parsing as pure functions: every real corpus report reads the way parsedmarc 11
reads it, malformed files fail with a reason a person can act on, and hostile input
(entities, external DTDs, bombs, huge text nodes) is refused without being expanded.

Expected values: tests/unit/reports/data/parsedmarc_corpus.json, written by
bench/reports_expected.py from what parsedmarc 11.1 extracts (timespan splitting off).
Where we read differently, the difference is spelled out below with its reason.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import socket
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from apps.reports.parsing import (
    AggregateReader,
    Limits,
    ReportError,
    TooLarge,
    aggregate,
    documents,
    parse_all,
)
from apps.reports.parsing.feedback import Feedback
from apps.reports.parsing.tlsrpt import TlsReport
from tests.conftest import CORPUS_DIR, corpus_file
from tests.support.mime import nested_multipart

EXPECTED = json.loads((Path(__file__).parent / "data" / "parsedmarc_corpus.json").read_text())
DMARC_FILES = sorted(k for k, v in EXPECTED.items() if v.get("type") == "dmarc")
TLS_FILES = sorted(k for k, v in EXPECTED.items() if v.get("type") == "tls")
FAILURE_FILES = sorted(k for k, v in EXPECTED.items() if v.get("type") == "failure")
# Where we read a file differently from parsedmarc, on purpose.
AGGREGATE = "dmarc-aggregate/parsedmarc/aggregate"
NOT_WELL_FORMED = "dmarc-aggregate/parsedmarc/aggregate/invalid_xml.xml"
INVALID_UTF8 = "dmarc-aggregate/parsedmarc/aggregate/invalid_utf_8.xml"


def _parse(rel: str, **kwargs):
    path = corpus_file(*rel.split("/"))
    return parse_all(path.read_bytes(), name=path.name, **kwargs)


def _row(record) -> list:
    return [
        record.source_ip,
        record.count,
        record.disposition,
        record.dkim,
        record.spf,
        record.header_from,
        # parsedmarc writes a missing DKIM selector as "none"; we leave it out.
        sorted(
            [a["domain"], a.get("selector") or "none", a["result"]] for a in record.dkim_results
        ),  # noqa: E501
        sorted([a["domain"], a.get("scope", ""), a["result"]] for a in record.spf_results),
    ]


def _sorted(rows: list) -> list:
    return sorted(rows, key=json.dumps)


# --- DMARC aggregate: the whole corpus against parsedmarc -------------------------------------


@pytest.mark.parametrize("rel", [f for f in DMARC_FILES if f != NOT_WELL_FORMED])
def test_it_reads_each_aggregate_report_as_parsedmarc_does(rel):
    expected = EXPECTED[rel]
    [parsed] = _parse(rel)
    assert parsed.type == "dmarc"
    meta = parsed.report.meta
    # parsedmarc lower-cases organisation names; we keep the reporter's spelling.
    assert meta.reporter.lower() == expected["org"].lower()
    assert meta.report_id == expected["reportId"]
    assert meta.domain == expected["domain"]
    assert len(parsed.records) == expected["recordCount"]
    assert sum(r.count for r in parsed.records) == expected["messages"]
    rows = [_row(r) for r in parsed.records]
    if rel == INVALID_UTF8:
        # Byte 0x91 (a Windows-1252 quote): parsedmarc drops it, we keep U+FFFD so the
        # value visibly carried something unreadable.
        assert rows[0][5] == "bad_byte\ufffd"
        rows[0][5] = "bad_byte"
    if "digest" in expected:
        text = json.dumps(_sorted(rows), sort_keys=True)
        assert hashlib.sha256(text.encode()).hexdigest() == expected["digest"]
        assert len({r[0] for r in rows}) == expected["distinctIps"]
    else:
        assert _sorted(rows) == _sorted(expected["records"])


def test_it_reads_the_large_report_record_by_record():
    [parsed] = _parse(f"{AGGREGATE}/!large-example.com!1711897200!1711983600.xml")
    assert len(parsed.records) == 2286
    first = parsed.records[0]
    assert (first.source_ip, first.count, first.disposition, first.dkim, first.spf) == (
        "12.20.121.1",
        1,
        "none",
        "fail",
        "fail",
    )
    # An empty org_name is named by the reporter's email domain, as parsedmarc does.
    assert parsed.report.meta.org_name == ""
    assert parsed.report.meta.reporter == "accurateplastics.com"


@pytest.mark.parametrize(
    "rel",
    [
        f"{AGGREGATE}/!large-example.com!1711897200!1711983600.xml",
        f"{AGGREGATE}/ikea.com!example.de!1538690400!1538776800.xml",
        f"{AGGREGATE}/rfc9990-example.net!example.com!1700000000!1700086399.xml",
        "dmarc-aggregate/dmarc-report-viewer/invalid_casing.xml",
        INVALID_UTF8,
    ],
)
def test_it_reads_the_same_report_whatever_the_chunk_size(rel, monkeypatch):
    """Records are read between chunks: where the chunks end changes nothing."""

    def read() -> tuple:
        [parsed] = _parse(rel)
        meta = parsed.report.meta
        return parsed.records, (meta.reporter, meta.report_id, meta.begin, meta.policy)

    whole = read()
    for chunk in (61, 1000):
        monkeypatch.setattr(aggregate, "CHUNK", chunk)
        assert read() == whole


def test_it_drops_what_surrounds_feedback_and_reads_it_whole(monkeypatch):
    monkeypatch.setattr(aggregate, "CHUNK", 16)
    record = b"<record><row><source_ip>192.0.2.%d</source_ip><count>1</count></row></record>"
    data = (
        b"<wrapper><before><a/><b>text</b></before><x:feedback xmlns:x='urn:x'>"
        + b"".join(record % n for n in range(50))
        + b"</x:feedback><after><c/><d/></after>"  # and the wrapper is never closed
    )
    [parsed] = parse_all(data, name="wrapped.xml")
    assert [r.source_ip for r in parsed.records] == [f"192.0.2.{n}" for n in range(50)]
    assert parsed.report.meta.namespace == "urn:x"
    truncated = data[: data.index(b"</x:feedback>")]
    with pytest.raises(ReportError) as caught:
        parse_all(truncated, name="truncated.xml")
    assert caught.value.reason.startswith("The XML ends early (line 1, column ")


@pytest.mark.parametrize(
    "rel",
    [
        "dmarc-aggregate/dmarc-report-converter/test.xml",
        "dmarc-aggregate/dmarc-report-converter/test.xml.gz",
        "dmarc-aggregate/dmarc-report-converter/test.xml.gz.gz",
        "dmarc-aggregate/dmarc-report-converter/test.xml.zip",
    ],
)
def test_it_unwraps_gzip_twice_and_zip_to_the_same_report(rel):
    # parsedmarc refuses the double gzip ("Not a recognized report format"); we unwrap it.
    [parsed] = _parse(rel)
    rows = [_row(r) for r in parsed.records]
    assert rows == [
        ["192.168.1.1", 5, "none", "pass", "pass", "test.net",
         [["test1.net", "selector1", "fail"], ["test2.net", "selector2", "pass"]],
         [["test.net", "mfrom", "pass"]]],
        ["10.1.1.1", 2, "none", "fail", "fail", "test2.net",
         [["test2.net", "selector", "fail"]],
         [["test2.net", "mfrom", "softfail"]]],
    ]  # fmt: skip
    meta = parsed.report.meta
    # `<end>1524268799 </end>`: the stray space is ignored.
    assert (meta.begin.timestamp(), meta.end.timestamp()) == (1524182400, 1524268799)
    assert meta.policy == {"domain": "test.net", "adkim": "r", "aspf": "r", "p": "none",
                           "pct": "100"}  # fmt: skip


def test_it_reads_a_record_whose_elements_are_all_empty():
    # parsedmarc refuses the whole report ("Source IP address is empty"); the record is
    # empty but the report is real, so we keep it with no source and a count of 0.
    [parsed] = _parse("dmarc-aggregate/dmarc-report-converter/test_empty.xml")
    [record] = parsed.records
    assert (record.source_ip, record.count, record.disposition, record.dkim, record.spf) == (
        None, 0, "", "", "")  # fmt: skip
    assert (record.dkim_results, record.spf_results) == ([], [])


def test_it_reads_the_rfc_9990_namespace_and_its_new_elements():
    [parsed] = _parse(
        "dmarc-aggregate/parsedmarc/aggregate/rfc9990-example.net!example.com!1700000000!1700086399.xml"
    )
    meta = parsed.report.meta
    assert meta.version == "2.0"
    assert meta.policy["np"] == "reject"
    assert meta.policy["testing"] == "y"
    assert meta.policy["discovery_method"] == "treewalk"
    assert parsed.records[1].reasons == [{"type": "other", "comment": "sender not authorized"}]
    [gmx] = _parse("dmarc-aggregate/dmarc-report-viewer/gmxnet.xml")
    assert gmx.report.meta.namespace == "urn:ietf:params:xml:ns:dmarc-2.0"
    assert gmx.records[0].source_ip is not None


def test_it_lower_cases_results_and_keeps_every_spf_result():
    [parsed] = _parse("dmarc-aggregate/dmarc-report-viewer/invalid_casing.xml")
    [record] = parsed.records
    assert [r["result"] for r in record.spf_results] == [
        "none", "neutral", "pass", "fail", "hardfail", "softfail", "temperror", "permerror",
    ]  # fmt: skip
    # The DKIM result with an empty domain and selector says nothing: dropped.
    assert record.dkim_results == []
    assert parsed.report.meta.policy["domain"] == "mydomain.org"  # <adkim> came first


def test_it_reads_ikea_s_report_inside_an_unclosed_wrapper():
    [parsed] = _parse(f"{AGGREGATE}/ikea.com!example.de!1538690400!1538776800.xml")
    assert parsed.report.meta.reporter == "ikea.com"
    assert [r.source_ip for r in parsed.records] == ["234.234.234.234"]


def test_it_skips_mimecast_s_trailing_garbage_after_the_gzip_data():
    [parsed] = _parse("dmarc-aggregate/parsedmarc/aggregate/mimecast-weird-gzip.eml")
    assert parsed.report.meta.reporter == "Mimecast"
    assert parsed.name.endswith(".xml")


def test_it_reads_a_zip_member_with_an_empty_name():
    [parsed] = _parse("dmarc-aggregate/mail-dmarc/test_dmarc.xml.zip")
    assert parsed.name == "test_dmarc.xml"  # named after the archive
    assert parsed.report.meta.reporter == "Test Sender"


def test_it_refuses_xml_that_is_not_well_formed_naming_the_place():
    # parsedmarc "recovers" it with lxml, silently dropping the broken element.
    with pytest.raises(ReportError) as caught:
        _parse(NOT_WELL_FORMED)
    assert caught.value.reason == (
        "The XML is not well-formed: not well-formed (invalid token) (line 5, column 17)."
    )


def test_it_refuses_an_empty_file():
    with pytest.raises(ReportError) as caught:
        _parse("dmarc-aggregate/parsedmarc/empty.xml")
    assert caught.value.reason == "The file is empty."


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello world", "Not a report: the file is neither XML, JSON, gzip, zip nor an "
                         "email message."),
        (b"<html><body>hi</body></html>",
         "The XML is not a DMARC aggregate report: it has no <feedback>."),
        (b"<feedback><report_metadata>", "The XML ends early (line 1, column 27): the file "
                                         "is truncated."),
        (b'{"policies": 3}', "The TLS report has no list of policies."),
        (b'{"organization-name": "x", "policies": [}',
         "The JSON is not valid: Expecting value (line 1, column 41)."),
        (gzip.compress(b"<feedback>")[:12], "The gzip data ends early: the file is truncated."),
        (b"\x1f\x8b" + b"\x00" * 20, "The gzip data is corrupt (Error -3 while decompressing "
                                    "data: unknown compression method)."),
        (b"PK\x03\x04garbage", "The zip archive is corrupt (File is not a zip file)."),
        (b"From: a@example.com\nSubject: hi\n\nhello\n",
         "The message holds no report: no DMARC (XML), TLS-RPT (JSON) or ARF part."),
        (b"<feedback><record><row><source_ip>1.2.3.4</source_ip><count>many</count></row>"
         b"</record></feedback>", "Record 1 has a count that is not a number: 'many'."),
        (b"<feedback><record><row><source_ip>mail.example</source_ip></row></record>"
         b"</feedback>", "Record 1 has a source_ip that is not an IP address: 'mail.example'."),
        (b"<feedback><record><row><source_ip>1.2.3.4</source_ip><count>\xc2\xb2</count></row>"
         b"</record></feedback>", "Record 1 has a count that is not a number: '\u00b2'."),
        (b'<?xml version="1.0" encoding="no-such-charset"?><feedback></feedback>',
         "The XML declares an encoding that does not exist: 'no-such-charset'."),
        (b'{"organization-name": "x", "policies": [{"summary": '
         b'{"total-successful-session-count": 1' + b"0" * 5000 + b"}}]}",
         "The JSON is not valid: it holds a number too long to read."),
        (b'{"organization-name": "x", "policies": [{"summary": '
         b'{"total-successful-session-count": 1' + b"0" * 30 + b"}}]}",
         "Policy 1: total-successful-session-count is larger than 999999999999999: "
         "'1" + "0" * 30 + "'."),
        (b'{"organization-name": "x", "policies": [{"summary": '
         b'{"total-failure-session-count": "\\u00b2"}}]}',
         "Policy 1: total-failure-session-count is not a number: '\u00b2'."),
        (b'{"organization-name": "x", "policies": [{"summary": '
         b'{"total-failure-session-count": 1e300}}]}',
         "Policy 1: total-failure-session-count is larger than 999999999999999: '1e+300'."),
    ],
)  # fmt: skip
def test_it_says_why_a_file_is_not_a_report(data, reason):
    with pytest.raises(ReportError) as caught:
        parse_all(data, name="upload")
    assert caught.value.reason == reason


@pytest.mark.parametrize("depth", [101, 1000])
def test_it_refuses_a_report_mail_nested_past_100_mime_levels(depth):
    feedback = b"Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
    arf = (b"From: a@example.com\r\nContent-Type: multipart/report; boundary=x\r\n\r\n"
           b"--x\r\n" + feedback + b"--x\r\nContent-Type: text/rfc822-headers\r\n\r\n"
           + nested_multipart(depth) + b"--x--\r\n")  # fmt: skip
    for data in (nested_multipart(depth), arf):
        with pytest.raises(ReportError) as caught:
            parse_all(data, name="upload")
        assert caught.value.reason == (
            "The message's MIME parts are nested more than 100 levels deep."
        )


# --- TLS-RPT ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", TLS_FILES)
def test_it_reads_each_tls_report_as_parsedmarc_does(rel):
    expected = EXPECTED[rel]
    [parsed] = _parse(rel)
    report = parsed.report
    assert isinstance(report, TlsReport)
    assert (report.org_name, report.report_id) == (expected["org"], expected["reportId"])
    policies = [
        [p.policy_domain, p.policy_type, p.successful, p.failed, len(p.failure_details)]
        for p in report.policies
    ]
    assert policies == expected["policies"]


def test_it_reads_tls_reports_parsedmarc_refuses():
    # rpt03: policies without policy-domain (no-policy-found); parsedmarc requires one.
    [parsed] = _parse("tlsrpt/mail-auth/rpt03.json")
    assert [(p.policy_type, p.policy_domain, p.successful) for p in parsed.report.policies] == [
        ("no-policy-found", "", 1), ("invalid-policy-type", "", 1)]  # fmt: skip
    assert parsed.report.domain == ""
    # rpt02.eml: an uncompressed attachment labelled application/tlsrpt.
    [mail] = _parse("tlsrpt/mail-auth/rpt02.eml")
    assert mail.report.org_name == "Google Inc."
    assert mail.report.policies[0].failure_details[0]["result-type"] == (
        "certificate-host-mismatch"
    )


def test_it_reads_the_failure_details_of_the_rfc_example():
    [parsed] = _parse("tlsrpt/parsedmarc/rfc8460.json")
    [policy] = parsed.report.policies
    assert (policy.successful, policy.failed) == (5326, 303)
    assert policy.mx_host == ["*.mail.company-y.example"]
    assert policy.failure_details[0] == {
        "result-type": "certificate-expired",
        "sending-mta-ip": "2001:db8:abcd:0012::1",
        "receiving-mx-hostname": "mx1.mail.company-y.example",
        "failed-session-count": 100,
    }


# --- failure reports and ARF ------------------------------------------------------------------


@pytest.mark.parametrize("rel", FAILURE_FILES)
def test_it_reads_each_failure_report_as_parsedmarc_does(rel):
    expected = EXPECTED[rel]
    [parsed] = _parse(rel)
    feedback = parsed.report
    assert isinstance(feedback, Feedback)
    assert feedback.feedback_type == expected["feedbackType"]
    assert feedback.source_ip == expected["sourceIp"]
    reported = feedback.fields.get("reported-domain", [])
    if reported:
        # arf-16 names two Reported-Domains: parsedmarc keeps the last, we file the
        # report under the first and keep both.
        assert expected["reportedDomain"] in reported
        assert feedback.domain == reported[0]
    else:  # both fall back on the original message's From
        assert feedback.domain == expected["reportedDomain"]
    assert parsed.type == ("dmarc-failure" if expected["feedbackType"] == "auth-failure" else "arf")


# What parsedmarc refuses ("not a valid failure DMARC report" / "not a valid report") but
# is a real complaint: ARF abuse reports without Source-IP, an opt-out, Hotmail's JMRP
# complaints and iCloud's unsubscribe.
ARF_BEYOND_PARSEDMARC = {
    "arf/mail-auth/arf-001.eml": ("arf", "abuse", None, "example.net", ""),
    "arf/sisimai/arf-02.eml": ("arf", "abuse", None, "example.com", ""),
    "arf/sisimai/arf-11.eml": ("arf", "abuse", None, "example.net", ""),
    "arf/sisimai/arf-12.eml": ("arf", "opt-out", None, "", ""),
    "arf/sisimai/arf-14.eml": ("arf", "abuse", None, "amazonses.com", ""),
    "arf/sisimai/arf-22.eml": ("arf", "abuse", "192.0.2.222", "example.com", "Hotmail"),
    "arf/sisimai/arf-23.eml": ("arf", "abuse", "192.0.2.222", "example.com", "Hotmail"),
    "arf/sisimai/arf-24.eml": ("arf", "abuse", "192.0.2.222", "kyoto-japan", "Hotmail"),
    "arf/sisimai/arf-26.eml": ("arf", "opt-out", None, "example.org", "iCloud"),
}


@pytest.mark.parametrize("rel", sorted(ARF_BEYOND_PARSEDMARC))
def test_it_reads_complaints_parsedmarc_refuses(rel):
    kind, feedback_type, source_ip, domain, variant = ARF_BEYOND_PARSEDMARC[rel]
    [parsed] = _parse(rel)
    feedback = parsed.report
    assert (parsed.type, feedback.feedback_type, feedback.source_ip, feedback.domain) == (
        kind, feedback_type, source_ip, domain)  # fmt: skip
    assert feedback.variant.startswith(variant)


def test_it_reads_the_same_arf_report_with_lf_crlf_and_bare_cr_line_endings():
    seen = set()
    for name in ("arf-01.eml", "arf-01.crlf.eml", "arf-01.cr.eml"):
        [parsed] = _parse(f"arf/sisimai/{name}")
        feedback = parsed.report
        seen.add((feedback.report_id, feedback.source_ip, feedback.domain, feedback.reporter))
        assert feedback.original.get("subject")
    assert len(seen) == 1  # the same report: stored once (same reporter and Message-ID)


def test_it_decodes_a_base64_feedback_part_and_folded_fields():
    [netease] = _parse("dmarc-forensic/parsedmarc/Netease_DMARC_Failure_Report_Rent_Reminder.eml")
    assert netease.report.first("user-agent") == "NtesDmarcReporter/1.0"
    assert netease.report.first("identity-alignment") == "spf,dkim"
    [folded] = _parse("dmarc-forensic/mail-auth/arf-005.eml")
    body = folded.report.first("dkim-canonicalized-body")
    assert body.startswith("VGhpcyBpcyBhIG1lc3NhZ2UgYm9keSB0aGF0IGdvdCBtb2RpZmllZCBpbiB0")
    assert " " not in body
    # The original as text/rfc822-headers.
    assert folded.report.original["subject"] == "You have a new bill from your bank"
    assert "DKIM-Signature: v=1;" in folded.report.original_headers


def test_it_reads_exim_s_plain_text_failure_report():
    [parsed] = _parse("dmarc-forensic/parsedmarc/exim_plain_text_only_no_arf_part.eml")
    feedback = parsed.report
    assert parsed.type == "dmarc-failure"
    assert feedback.variant == "plain-text failure report (Exim)"
    assert (feedback.source_ip, feedback.domain) == ("203.0.113.68", "example.com")
    assert feedback.original["subject"] == "Payment from your account."
    assert feedback.first("dmarc-results") == "None, Accept"


# --- every real report in the corpus --------------------------------------------------------------


def test_it_reads_every_report_file_in_the_corpus():
    """Nothing in the corpus crashes the parser; only the two malformed files fail."""
    if not CORPUS_DIR.is_dir():
        corpus_file("README.md")  # skips (fails in CI) with the reason
    failed = {}
    count = 0
    for folder in ("dmarc-aggregate", "dmarc-forensic", "arf", "tlsrpt"):
        for path in sorted((CORPUS_DIR / folder).rglob("*")):
            if not path.is_file():
                continue
            count += 1
            try:
                assert parse_all(path.read_bytes(), name=path.name)
            except ReportError as exc:
                failed[str(path.relative_to(CORPUS_DIR))] = exc.reason
    assert count == 102
    assert failed == {
        "dmarc-aggregate/parsedmarc/empty.xml": "The file is empty.",
        NOT_WELL_FORMED: "The XML is not well-formed: not well-formed (invalid token) "
        "(line 5, column 17).",
    }


# --- hostile input ----------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE feedback [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<feedback><report_metadata><org_name>&lol9;</org_name></report_metadata></feedback>
"""
ENTITIES_REFUSED = (
    "The XML declares entities, which reports never need: refused without expanding them."
)


def test_it_refuses_billion_laughs_without_expanding_it():
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ReportError) as caught:
            parse_all(BILLION_LAUGHS, name="lol.xml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.reason == ENTITIES_REFUSED
    assert time.perf_counter() - started < 1
    assert peak < 2 * 1024 * 1024  # expanded, lol9 alone would be 3 GB


def test_it_refuses_an_external_entity_without_fetching_it(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        for payload in (
            f'<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file://{secret}">]>'
            "<feedback><report_metadata><org_name>&xxe;</org_name></report_metadata>"
            "</feedback>",
            f'<!DOCTYPE feedback [<!ENTITY % dtd SYSTEM "http://127.0.0.1:{port}/x.dtd">'
            "%dtd;]><feedback/>",
        ):
            with pytest.raises(ReportError) as caught:
                parse_all(payload.encode(), name="xxe.xml")
            assert caught.value.reason == ENTITIES_REFUSED
        # An external DTD is never fetched; the report itself is then read.
        document = (
            f'<!DOCTYPE feedback SYSTEM "http://127.0.0.1:{port}/feedback.dtd">'
            "<feedback><report_metadata><org_name>x</org_name><report_id>1</report_id>"
            "</report_metadata><policy_published><domain>a.example</domain>"
            "</policy_published></feedback>"
        )
        [parsed] = parse_all(document.encode(), name="dtd.xml")
        assert parsed.report.meta.report_id == "1"
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


def test_it_refuses_an_entity_declaration_split_across_chunks(monkeypatch):
    """The guard parser reads each chunk before the element parser does: a declaration cut
    by a chunk boundary is complete for neither until the chunk that completes it, which
    the guard refuses first."""
    xxe = b'<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><feedback/>'
    for payload in (BILLION_LAUGHS, xxe):
        start = payload.index(b"<!ENTITY")
        end = payload.index(b">", start)
        for chunk in (1, 7, 16, start + 4):
            assert any(start < cut < end for cut in range(chunk, len(payload), chunk))
            monkeypatch.setattr(aggregate, "CHUNK", chunk)
            with pytest.raises(ReportError) as caught:
                parse_all(payload, name="split.xml")
            assert caught.value.reason == ENTITIES_REFUSED


def test_it_refuses_a_declaration_after_the_first_element():
    # The guard stops at the first element: past it, a declaration is not well-formed.
    payload = b'<feedback><!DOCTYPE x [<!ENTITY a "b">]><record/></feedback>'
    with pytest.raises(ReportError) as caught:
        parse_all(payload, name="late.xml")
    assert caught.value.reason == (
        "The XML is not well-formed: not well-formed (invalid token) (line 1, column 12)."
    )


def test_it_names_an_undefined_entity():
    # With an external DTD (never fetched), expat leaves an unknown entity to us.
    payload = (
        b'<!DOCTYPE feedback SYSTEM "feedback.dtd"><feedback><report_metadata>'
        b"<org_name>&foo;</org_name></report_metadata></feedback>"
    )
    with pytest.raises(ReportError) as caught:
        parse_all(payload, name="undefined.xml")
    assert caught.value.reason == (
        "The XML is not well-formed: undefined entity (line 1, column 78)."
    )


@pytest.fixture(scope="module")
def gigabyte_of_newlines() -> bytes:
    """1 GB of newlines as gzip (about 1 MB): one 64 MB member repeated 16 times, which
    is still one valid gzip file (RFC 1952 members follow each other)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\n" * (1024 * 1024)
    member = b"".join(compressor.compress(chunk) for _ in range(64)) + compressor.flush()
    return member * 16


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """A zip whose one member inflates to 1 GB of spaces, built by hand in a second: one
    deflate block (ended by a full flush, so it refers to nothing before it) repeated."""
    chunk = b" " * (1024 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # empty last block
    data = block * 1024 + final
    size, crc = 1024 * len(chunk), 0
    for _ in range(1024):
        crc = zlib.crc32(chunk, crc)
    name = b"report.xml"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size,
                        len(name), 0) + name  # fmt: skip
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data),
                          size, len(name), 0, 0, 0, 0, 0, 0) + name  # fmt: skip
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)  # fmt: skip
    bomb = local + data + central + end
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:  # a valid archive, really that big
        assert archive.infolist()[0].file_size == size
        assert archive.open("report.xml").read(10) == b" " * 10
    return bomb


def _consume(data: bytes, limits: Limits) -> None:
    for parsed in parse_all(data, name="bomb", limits=limits):
        assert parsed is None  # never reached


def _bounded(data: bytes, limits: Limits) -> tuple[str, float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TooLarge) as caught:
            _consume(data, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return caught.value.reason, time.perf_counter() - started, peak


@pytest.mark.parametrize(
    ("prefix", "reason", "max_peak"),
    [
        # Inside XML: the whitespace is one text node, refused after 64 KB of it.
        (b"<feedback>", "An element of the XML holds more than 64 KB of text.", 4),
        # Inside a message (held whole to parse it): the expansion ratio stops it at 16 MB.
        (b"From: a@b.example\nSubject: x\n\n",
         "The compressed data expands more than 500-fold: refused as a decompression bomb.",
         40),
    ],
)  # fmt: skip
def test_it_refuses_a_gzip_bomb_quickly_in_bounded_memory(
    gigabyte_of_newlines, prefix, reason, max_peak
):
    bomb = gzip.compress(prefix) + gigabyte_of_newlines
    assert len(bomb) < 2 * 1024 * 1024
    refused, seconds, peak = _bounded(bomb, Limits())
    assert refused == reason
    assert seconds < 3  # never inflates the whole gigabyte
    assert peak < max_peak * 1024 * 1024


def test_it_stops_decompressing_at_the_cap_when_the_ratio_looks_normal():
    # Small elements of random text: little compression, nothing else to object to.
    noise = base64.b64encode(os.urandom(2_000_000))
    body = b"".join(b"<x>%s</x>" % noise[i : i + 60] for i in range(0, len(noise), 60))
    data = gzip.compress(b"<feedback>" + body + b"</feedback>")
    with pytest.raises(TooLarge) as caught:
        _consume(data, Limits(max_decompressed=1_000_000))
    assert caught.value.reason == "The report is larger than 976.6 KB once decompressed."


def test_it_refuses_an_xml_token_that_never_ends():
    # expat holds an unfinished comment whole: refused before it reaches the cap.
    data = gzip.compress(b"<feedback><!-- " + b"x" * (3 * 1024 * 1024))
    with pytest.raises(TooLarge) as caught:
        _consume(data, Limits())
    assert caught.value.reason == "The XML runs for more than 1 MB without an element."


def test_it_refuses_a_zip_bomb_at_once_from_its_declared_size(zip_bomb):
    assert len(zip_bomb) < 2 * 1024 * 1024
    reason, seconds, peak = _bounded(zip_bomb, Limits())
    assert reason == "The report is larger than 200 MB once decompressed."
    assert seconds < 2
    assert peak < 16 * 1024 * 1024


def test_it_refuses_a_zip_member_larger_than_the_cap():
    data = b"<feedback>" + b" " * 3_000_000 + b"</feedback>"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report.xml", data)
    limits = Limits(max_decompressed=1_000_000)
    with pytest.raises(TooLarge) as caught:
        _consume(buffer.getvalue(), limits)
    assert caught.value.reason == "The report is larger than 976.6 KB once decompressed."


def test_it_refuses_a_huge_text_node_without_holding_it():
    data = gzip.compress(b"<feedback><report_metadata><org_name>" + b"x" * 5_000_000)
    with pytest.raises(TooLarge) as caught:
        _consume(data, Limits())
    assert caught.value.reason == "An element of the XML holds more than 64 KB of text."


def test_it_counts_text_in_characters_and_not_whitespace_around_the_report():
    accented = "<feedback><report_metadata><org_name>" + "é" * 40_000 + "</org_name>"
    [parsed] = parse_all((accented + "</report_metadata></feedback>").encode(), name="a.xml")
    assert len(parsed.report.meta.org_name) == 40_000  # 80 KB of UTF-8, 40,000 characters
    # Whitespace before and after the document element is not the text of an element.
    padding = b"\n" * 200_000
    for data in (b"<?xml version='1.0'?>" + padding + b"<feedback/>", b"<feedback/>" + padding):
        [parsed] = parse_all(data, name="padded.xml")
        assert parsed.records == []


def test_it_refuses_a_record_that_grows_without_end():
    data = gzip.compress(b"<feedback><record>" + b"<x/>" * 20_000 + b"</record></feedback>")
    with pytest.raises(TooLarge) as caught:
        _consume(data, Limits())
    assert caught.value.reason == (
        "An element of the XML holds more than 10,000 elements: a record has a few dozen."
    )


def test_it_refuses_elements_nested_without_end():
    data = b"<feedback><record>" + b"<a>" * 200 + b"</a>" * 200 + b"</record></feedback>"
    with pytest.raises(TooLarge) as caught:
        _consume(data, Limits())
    assert caught.value.reason == "The XML nests elements more than 100 deep."


def test_it_caps_records_and_compressed_size():
    record = b"<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row></record>"
    data = b"<feedback>" + record * 11 + b"</feedback>"
    with pytest.raises(TooLarge) as caught:
        _consume(data, Limits(max_records=10))
    assert caught.value.reason == "The report has more than 10 records."
    with pytest.raises(TooLarge) as caught:
        _consume(data, Limits(max_compressed=100))
    assert caught.value.reason == "The file is larger than the 100 bytes limit."


def test_it_streams_a_large_report_in_flat_memory():
    """Records are dropped as they are read: memory does not grow with the report."""

    def report(records: int) -> bytes:
        rows = b"".join(
            b"<record><row><source_ip>10.%d.%d.%d</source_ip><count>3</count>"
            b"<policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"
            b"<spf>fail</spf></policy_evaluated></row><identifiers><header_from>a.example"
            b"</header_from></identifiers><auth_results><dkim><domain>a.example</domain>"
            b"<result>pass</result></dkim></auth_results></record>\n"
            % (i >> 16 & 255, i >> 8 & 255, i & 255)
            for i in range(records)
        )
        return (
            b"<feedback><report_metadata><org_name>big</org_name><report_id>1</report_id>"
            b"</report_metadata><policy_published><domain>a.example</domain>"
            b"</policy_published>" + rows + b"</feedback>"
        )

    peaks = []
    for records in (500, 5_000):
        data = gzip.compress(report(records), compresslevel=1)
        tracemalloc.start()
        try:
            [document] = documents(data, name="big.xml.gz", limits=Limits())
            reader = AggregateReader(document.stream, limits=Limits(), head=document.stream.head)
            total = sum(record.count for record in reader.records())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert total == 3 * records
        peaks.append(peak - len(data))
    assert peaks[1] < peaks[0] * 1.5 + 512 * 1024  # 10x the records, about the same memory
