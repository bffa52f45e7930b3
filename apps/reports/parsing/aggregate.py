"""DMARC aggregate reports (RFC 7489 appendix C, RFC 9990) read as a stream.

`AggregateReader.records()` yields one record at a time, built straight from expat's
events (no element tree), so a report of any size needs the memory of one record plus
the parser's buffer. Security: the expat parser is set up by defusedxml, which refuses
entity declarations (billion laughs, XXE) as soon as it meets them, before anything is
expanded, and never fetches external DTDs; text per element and input without elements
are capped too.

Lenient where real reporters deviate, strict where the data would be wrong:
- the 1.0/2.0 namespaces, none, or any other; unknown elements; any element order;
  empty elements; stray whitespace; result values in any case (`Pass` is `pass`);
- an auth result naming no domain says nothing and is dropped (as parsedmarc does); an
  SPF result without a scope is `mfrom`, the default of RFC 7489;
- an empty org_name: the reporter is named by its email domain (`meta.reporter`);
- invalid UTF-8 (a Windows-1252 quote in a domain) is replaced by U+FFFD;
- a wrapper element left unclosed around `<feedback>` (IKEA) is ignored once the
  `</feedback>` has been read;
- XML that is not well-formed inside `<feedback>`, a count that is not a number or a
  source that is not an IP address make the report fail, naming the line or record.
"""

from __future__ import annotations

import codecs
import io
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO
from xml.etree.ElementTree import TreeBuilder
from xml.parsers.expat import ErrorString, ExpatError

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.ElementTree import DefusedXMLParser

from apps.reports.parsing.errors import Limits, ReportError, TooLarge

POLICY_FIELDS = ("domain", "adkim", "aspf", "p", "sp", "np", "pct", "fo", "testing")
ENCODING_DECL = re.compile(rb"""<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
# C0 controls other than TAB, LF, CR are never allowed in XML 1.0; some reporters emit them.
_CONTROLS = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))


@dataclass(slots=True)
class AggregateRecord:
    source_ip: str | None
    count: int
    disposition: str
    dkim: str  # DMARC's evaluation: did an aligned DKIM signature pass
    spf: str  # did an aligned SPF check pass
    header_from: str = ""
    envelope_from: str = ""
    envelope_to: str = ""
    reasons: list[dict[str, str]] = field(default_factory=list)
    dkim_results: list[dict[str, str]] = field(default_factory=list)
    spf_results: list[dict[str, str]] = field(default_factory=list)

    @property
    def dmarc_pass(self) -> bool:
        """DMARC passes when either aligned identifier passed (RFC 7489 section 6.6.2)."""
        return self.dkim == "pass" or self.spf == "pass"


@dataclass
class AggregateMeta:
    org_name: str = ""
    email: str = ""
    extra_contact_info: str = ""
    report_id: str = ""
    begin: datetime | None = None
    end: datetime | None = None
    errors: list[str] = field(default_factory=list)
    version: str = ""
    generator: str = ""
    namespace: str = ""
    policy: dict[str, str] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        return self.policy.get("domain", "")

    @property
    def reporter(self) -> str:
        """org_name, or the domain of the reporter's address when it left org_name empty."""
        if self.org_name:
            return self.org_name
        return self.email.rpartition("@")[2].strip().lower() if "@" in self.email else ""


def _timestamp(value: str) -> datetime | None:
    """Unix seconds (`1524268799 `, `1.5e9`) or ISO 8601; None when neither."""
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.fromtimestamp(int(float(value)), tz=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


MAX_TEXT = 64 * 1024
# Expat holds an unfinished token (a comment, a tag, a declaration) whole, re-scanning it
# as data arrives: input that produces no element for this long is refused.
MAX_WITHOUT_EVENT = 1024 * 1024
CHUNK = 64 * 1024
AUTH_KINDS = ("dkim", "spf")


class Utf8Repair(io.RawIOBase):
    """Re-encodes UTF-8 with invalid bytes replaced (U+FFFD) and stray C0 controls removed."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = self._source.read(max(len(buffer), 16 * 1024))
            text = self._decoder.decode(chunk, final=not chunk)
            if text:
                self._pending = text.translate(_CONTROLS).encode("utf-8")
            if not chunk:
                break
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _needs_repair(head: bytes) -> bool:
    """True for UTF-8 documents (declared or by default); others are left to expat."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    match = ENCODING_DECL.search(head[:512])
    return match is None or match.group(1).lower().replace(b"_", b"-") in {b"utf-8", b"utf8"}


class AggregateReader:
    """Reads one aggregate report; `meta` fills in as its elements go by.

    Iterate `records()` to the end, then `meta` is complete. The metadata usually comes
    first, so `meta.report_id` is known by the first record (callers may stop early on a
    duplicate), but element order is not relied on.
    """

    def __init__(self, stream: BinaryIO, *, limits: Limits, head: bytes = b"") -> None:
        self._stream = stream
        self._limits = limits
        self._head = head
        self.meta = AggregateMeta()
        self.record_count = 0
        self.complete = False
        self.has_metadata = False
        self.seen_feedback = False

    def records(self) -> Iterator[AggregateRecord]:
        source: BinaryIO = self._stream
        if _needs_repair(self._head):
            source = io.BufferedReader(Utf8Repair(source), CHUNK)
        # defusedxml's parser installs the handlers that refuse entity declarations and
        # external references; the element and text handlers are ours (_Builder).
        parser = DefusedXMLParser(
            target=TreeBuilder(),
            forbid_dtd=False,  # a bare DOCTYPE is harmless; its entities are refused
            forbid_entities=True,
            forbid_external=True,
        )
        expat = parser.parser
        builder = _Builder(self)
        expat.StartElementHandler = builder.start
        expat.EndElementHandler = builder.end
        expat.CharacterDataHandler = builder.data
        quiet = 0  # bytes fed since the last element event
        error: ExpatError | None = None
        try:
            while True:
                chunk = source.read(CHUNK)
                events = builder.events
                expat.Parse(chunk, not chunk)
                if builder.ready:
                    ready, builder.ready = builder.ready, []
                    yield from ready
                if not chunk:
                    break
                quiet = 0 if builder.events != events else quiet + len(chunk)
                if quiet > MAX_WITHOUT_EVENT:
                    raise TooLarge(
                        f"The XML runs for more than {MAX_WITHOUT_EVENT // (1024 * 1024)} MB "
                        "without an element."
                    )
        except ExpatError as exc:
            error = exc
        except EntitiesForbidden:
            raise ReportError(
                "The XML declares entities, which reports never need: refused without "
                "expanding them."
            ) from None
        except DTDForbidden:
            raise ReportError("The XML has a DTD, which reports never need.") from None
        except DefusedXmlException:
            raise ReportError(
                "The XML refers to an external resource: refused without fetching it."
            ) from None
        if error is not None:
            if not self.complete:  # after </feedback>, a dangling wrapper is harmless
                raise ReportError(_parse_error_text(error))
            yield from builder.ready
        if not self.seen_feedback:
            raise ReportError("The XML is not a DMARC aggregate report: it has no <feedback>.")
        if not self.complete:
            raise ReportError("The XML ends before </feedback>.")

    def add_record(self, fields: dict) -> AggregateRecord:
        self.record_count += 1
        if self.record_count > self._limits.max_records:
            raise TooLarge(f"The report has more than {self._limits.max_records:,} records.")
        number = self.record_count
        ids = fields["ids"]
        return AggregateRecord(
            source_ip=_source_ip(fields.get("source_ip", ""), number),
            count=_count(fields.get("count", ""), number),
            disposition=fields.get("disposition", "").lower(),
            dkim=fields.get("dkim", "").lower(),
            spf=fields.get("spf", "").lower(),
            header_from=ids.get("header_from", ""),
            envelope_from=ids.get("envelope_from", ""),
            envelope_to=ids.get("envelope_to", ""),
            reasons=fields["reasons"],
            dkim_results=fields["auth_dkim"],
            spf_results=fields["auth_spf"],
        )


class _Builder:
    """Expat's element and text handlers: records are built field by field, with no element
    tree at all, so memory is one record whatever the size of the report.

    `stack` holds the local names of the open elements; depths are counted from the
    `<feedback>` element, wherever it sits (IKEA wraps it in an unclosed element).
    """

    def __init__(self, reader: AggregateReader) -> None:
        self.reader = reader
        self.meta = reader.meta
        self.stack: list[str] = []
        self.text: list[str] = []
        self.text_size = 0
        self.base = 0  # len(stack) with <feedback> open; 0 until it is seen
        self.events = 0
        self.ready: list[AggregateRecord] = []
        self.record: dict | None = None  # the fields of the record being read
        self.item: dict[str, str] | None = None  # the reason or auth result being read

    def start(self, name: str, attributes) -> None:
        self.events += 1
        self.text = []
        self.text_size = 0
        local = name.rpartition("}")[2]
        stack = self.stack
        stack.append(local)
        if not self.base:
            if local == "feedback":
                self.base = len(stack)
                self.reader.seen_feedback = True
                self.meta.namespace = name.rpartition("}")[0]
            return
        level = len(stack) - self.base  # 1: a child of <feedback>
        if level == 1 and local == "record":
            self.record = {"ids": {}, "reasons": [], "auth_dkim": [], "auth_spf": []}
        elif self.record is not None and (
            (level == 3 and stack[-2] == "auth_results" and local in AUTH_KINDS)
            or (level == 4 and stack[-2] == "policy_evaluated" and local == "reason")
        ):
            self.item = {}

    def data(self, text: str) -> None:
        self.text_size += len(text)
        if self.text_size > MAX_TEXT:
            raise TooLarge(f"An element of the XML holds more than {MAX_TEXT // 1024} KB of text.")
        self.text.append(text)

    def end(self, name: str) -> None:
        self.events += 1
        stack = self.stack
        local = stack.pop()
        text, self.text, self.text_size = self.text, [], 0
        if not self.base:
            return
        level = len(stack) - self.base + 1  # the level of the element that just ended
        if level <= 0:
            if level == 0 and local == "feedback":
                self.reader.complete = True
                self.base = -(10**9)  # anything after </feedback> is ignored
            return
        value = "".join(text).strip() if text else ""
        record = self.record
        parent = stack[-1]
        if record is not None:
            if level == 1:  # </record>
                self.ready.append(self.reader.add_record(record))
                self.record = None
            elif level == 3 and parent == "row":
                record[local] = value  # source_ip, count
            elif level == 4 and parent == "policy_evaluated":
                if local == "reason":
                    reason = {k: v for k, v in (self.item or {}).items() if v}
                    if "type" in reason:
                        reason["type"] = reason["type"].lower()
                    if reason:
                        record["reasons"].append(reason)
                    self.item = None
                else:
                    record[local] = value  # disposition, dkim, spf
            elif level == 5 and parent == "reason" and self.item is not None:
                self.item[local] = value
            elif level == 3 and parent == "identifiers":
                record["ids"][local] = value
            elif level == 3 and parent == "auth_results" and local in AUTH_KINDS:
                item = self.item or {}
                self.item = None
                if item.get("domain"):  # a result naming no domain says nothing
                    item["result"] = item.get("result", "").lower()
                    if local == "spf":
                        item["scope"] = item.get("scope", "").lower() or "mfrom"
                    record[f"auth_{local}"].append(item)
            elif level == 4 and self.item is not None and stack[-2] == "auth_results":
                self.item[local] = value
            return
        meta = self.meta
        if level == 1:
            if local == "report_metadata":
                self.reader.has_metadata = True
            elif local == "version":
                meta.version = value
        elif level == 2 and parent == "report_metadata":
            if local in ("org_name", "email", "extra_contact_info", "report_id", "generator"):
                setattr(meta, local, value)
            elif local == "error" and value:
                meta.errors.append(value)
        elif level == 3 and parent == "date_range":
            if local == "begin":
                meta.begin = _timestamp(value)
            elif local == "end":
                meta.end = _timestamp(value)
        elif level == 2 and parent == "policy_published":
            if local == "domain":
                meta.policy["domain"] = value.lower().rstrip(".")
            elif local in POLICY_FIELDS or local == "discovery_method":
                meta.policy[local] = value.lower()


def _parse_error_text(exc: ExpatError) -> str:
    message = ErrorString(exc.code) or str(exc)
    line, column = exc.lineno, exc.offset
    if message == "no element found":
        return f"The XML ends early (line {line}, column {column}): the file is truncated."
    return f"The XML is not well-formed: {message} (line {line}, column {column})."


def _source_ip(value: str, number: int) -> str | None:
    """The address in its canonical form (RFC 5952 for IPv6), via the C parser."""
    if not value:
        return None
    family = socket.AF_INET6 if ":" in value else socket.AF_INET
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, value))
    except (OSError, ValueError):
        raise ReportError(
            f"Record {number} has a source_ip that is not an IP address: {value[:64]!r}."
        ) from None


def _count(value: str, number: int) -> int:
    if not value:
        return 0
    if not value.isdigit() or len(value) > 15:
        raise ReportError(f"Record {number} has a count that is not a number: {value[:64]!r}.")
    return int(value)


@dataclass
class AggregateReport:
    """A whole report in memory: for tests and small callers (services stream instead)."""

    meta: AggregateMeta
    records: list[AggregateRecord]


def parse_aggregate(data: bytes, *, limits: Limits | None = None) -> AggregateReport:
    reader = AggregateReader(io.BytesIO(data), limits=limits or Limits(), head=data[:512])
    records = list(reader.records())
    return AggregateReport(meta=reader.meta, records=records)
