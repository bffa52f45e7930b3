"""Report parsing as pure functions over bytes and streams: no Django, no database.

    for document in documents(data, name="upload.xml.gz", limits=Limits()):
        report = read(document, limits=limits)   # AggregateReader | TlsReport | Feedback

An AggregateReader streams its records (consume `records()` before the next document);
the other two are small and parsed whole. Every failure is a ReportError whose `reason`
is meant for people.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.reports.parsing.aggregate import (
    AggregateMeta,
    AggregateReader,
    AggregateRecord,
    parse_aggregate,
)
from apps.reports.parsing.containers import Document, documents
from apps.reports.parsing.errors import Limits, ReportError, TooLarge, size_text
from apps.reports.parsing.feedback import Feedback, parse_feedback
from apps.reports.parsing.tlsrpt import TlsPolicy, TlsReport, parse_tls

__all__ = [
    "AggregateMeta",
    "AggregateReader",
    "AggregateRecord",
    "Document",
    "Feedback",
    "Limits",
    "Parsed",
    "ReportError",
    "TlsPolicy",
    "TlsReport",
    "TooLarge",
    "documents",
    "parse_aggregate",
    "parse_all",
    "read",
    "size_text",
]


def read(document: Document, *, limits: Limits) -> AggregateReader | TlsReport | Feedback:
    if document.kind == "xml":
        head = getattr(document.stream, "head", b"")
        return AggregateReader(document.stream, limits=limits, head=head)
    if document.kind == "json":
        return parse_tls(document.stream, limits=limits)
    return parse_feedback(document.message, raw=document.raw)


@dataclass
class Parsed:
    """One report read whole (records in a list): for tests, benchmarks and small files."""

    type: str  # "dmarc" | "tls" | "arf" | "dmarc-failure"
    name: str
    report: AggregateReader | TlsReport | Feedback
    records: list[AggregateRecord]


def parse_all(data: bytes, *, name: str = "report", limits: Limits | None = None) -> list[Parsed]:
    limits = limits or Limits()
    parsed = []
    for document in documents(data, name=name, limits=limits):
        report = read(document, limits=limits)
        if isinstance(report, AggregateReader):
            parsed.append(Parsed("dmarc", document.name, report, list(report.records())))
        elif isinstance(report, TlsReport):
            parsed.append(Parsed("tls", document.name, report, []))
        else:
            parsed.append(Parsed(report.kind, document.name, report, []))
    return parsed
