"""DMARC aggregate reports (RFC 7489 appendix C, RFC 9990) read as a stream.

`AggregateReader.records()` yields one record at a time and drops it from the tree, so a
report of any size needs the memory of one record (plus the parser's buffer). Security:
defusedxml refuses entity declarations (billion laughs, XXE) as soon as it meets them,
before anything is expanded, and never fetches external DTDs.

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
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.ElementTree import DefusedXMLParser, iterparse

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


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag[:1] == "{" else tag


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag[:1] == "{" else ""


def _text(element: Element | None) -> str:
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def _result(value: str) -> str:
    return value.strip().lower()


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
MAX_WITHOUT_EVENT = 1024 * 1024  # also bounds expat re-scanning an unfinished token


class _Progress(io.RawIOBase):
    """Counts what the parser read since it last produced an element: expat holds an
    unfinished token (a comment, a tag, a declaration) whole in memory, so one that never
    ends would grow with the file."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.since_event = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        self.since_event += len(data)
        if self.since_event > MAX_WITHOUT_EVENT:
            raise TooLarge(
                f"The XML runs for more than {MAX_WITHOUT_EVENT // (1024 * 1024)} MB without "
                "an element."
            )
        buffer[: len(data)] = data
        return len(data)


class _BoundedTreeBuilder(TreeBuilder):
    """Caps the text of one element: report values are short, and a text node of 100 MB
    would otherwise be held whole in memory until its element ends."""

    def __init__(self) -> None:
        super().__init__()
        self._text = 0

    def data(self, data: str) -> None:
        self._text += len(data)
        if self._text > MAX_TEXT:
            raise TooLarge(f"An element of the XML holds more than {MAX_TEXT // 1024} KB of text.")
        super().data(data)

    def start(self, tag, attrs):
        self._text = 0
        return super().start(tag, attrs)

    def end(self, tag):
        self._text = 0
        return super().end(tag)


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

    def records(self) -> Iterator[AggregateRecord]:
        source: BinaryIO = self._stream
        if _needs_repair(self._head):
            source = io.BufferedReader(Utf8Repair(source), 64 * 1024)
        progress = _Progress(source)
        parser = DefusedXMLParser(
            target=_BoundedTreeBuilder(),
            forbid_dtd=False,  # a bare DOCTYPE is harmless; its entities are refused below
            forbid_entities=True,
            forbid_external=True,
        )
        events = iterparse(progress, events=("start", "end"), parser=parser)
        stack: list[Element] = []
        feedback: Element | None = None
        try:
            for event, element in events:
                progress.since_event = 0
                if event == "start":
                    if feedback is None and _local(element.tag) == "feedback":
                        feedback = element
                        self.meta.namespace = _namespace(element.tag)
                    stack.append(element)
                    continue
                stack.pop()
                if element is feedback:
                    self.complete = True
                    continue
                if feedback is None or not stack or stack[-1] is not feedback:
                    continue
                name = _local(element.tag)
                if name == "record":
                    self.record_count += 1
                    if self.record_count > self._limits.max_records:
                        raise TooLarge(
                            f"The report has more than {self._limits.max_records:,} records."
                        )
                    yield _record(element, self.record_count)
                elif name == "report_metadata":
                    self._metadata(element)
                elif name == "policy_published":
                    self._policy(element)
                elif name == "version":
                    self.meta.version = _text(element)
                feedback.remove(element)  # what was read is dropped: memory stays flat
        except ParseError as exc:
            if not self.complete:  # after </feedback>, a dangling wrapper is harmless
                raise ReportError(_parse_error_text(exc)) from None
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
        if feedback is None:
            raise ReportError("The XML is not a DMARC aggregate report: it has no <feedback>.")
        if not self.complete:
            raise ReportError("The XML ends before </feedback>.")

    def _metadata(self, element: Element) -> None:
        meta = self.meta
        self.has_metadata = True
        for child in element:
            name = _local(child.tag)
            if name == "org_name":
                meta.org_name = _text(child)
            elif name == "email":
                meta.email = _text(child)
            elif name == "extra_contact_info":
                meta.extra_contact_info = _text(child)
            elif name == "report_id":
                meta.report_id = _text(child)
            elif name == "generator":
                meta.generator = _text(child)
            elif name == "error":
                if _text(child):
                    meta.errors.append(_text(child))
            elif name == "date_range":
                for part in child:
                    if _local(part.tag) == "begin":
                        meta.begin = _timestamp(_text(part))
                    elif _local(part.tag) == "end":
                        meta.end = _timestamp(_text(part))

    def _policy(self, element: Element) -> None:
        for child in element:
            name = _local(child.tag)
            value = _text(child)
            if name == "domain":
                self.meta.policy["domain"] = value.lower().rstrip(".")
            elif name in POLICY_FIELDS or name == "discovery_method":
                self.meta.policy[name] = value.lower()


def _parse_error_text(exc: ParseError) -> str:
    message = str(exc).split(":", 1)[0] if ": line" in str(exc) else str(exc)
    line, column = getattr(exc, "position", (0, 0))
    if message == "no element found":
        return f"The XML ends early (line {line}, column {column}): the file is truncated."
    return f"The XML is not well-formed: {message} (line {line}, column {column})."


def _record(element: Element, number: int) -> AggregateRecord:
    source_ip = count = disposition = dkim = spf = ""
    reasons: list[dict[str, str]] = []
    ids: dict[str, str] = {}
    dkim_results: list[dict[str, str]] = []
    spf_results: list[dict[str, str]] = []
    for part in element:
        name = _local(part.tag)
        if name == "row":
            for child in part:
                child_name = _local(child.tag)
                if child_name == "source_ip":
                    source_ip = _text(child)
                elif child_name == "count":
                    count = _text(child)
                elif child_name == "policy_evaluated":
                    for item in child:
                        item_name = _local(item.tag)
                        if item_name == "disposition":
                            disposition = _text(item).lower()
                        elif item_name == "dkim":
                            dkim = _result(_text(item))
                        elif item_name == "spf":
                            spf = _result(_text(item))
                        elif item_name == "reason":
                            reason = {_local(r.tag): _text(r) for r in item}
                            reason = {k: v for k, v in reason.items() if v}
                            if reason:
                                if "type" in reason:
                                    reason["type"] = reason["type"].lower()
                                reasons.append(reason)
        elif name == "identifiers":
            for child in part:
                ids[_local(child.tag)] = _text(child)
        elif name == "auth_results":
            for child in part:
                kind = _local(child.tag)
                values = {_local(item.tag): _text(item) for item in child}
                if not values.get("domain"):
                    continue
                values["result"] = _result(values.get("result", ""))
                if kind == "dkim":
                    dkim_results.append(values)
                elif kind == "spf":
                    values["scope"] = values.get("scope", "").lower() or "mfrom"
                    spf_results.append(values)
    return AggregateRecord(
        source_ip=_source_ip(source_ip, number),
        count=_count(count, number),
        disposition=disposition,
        dkim=dkim,
        spf=spf,
        header_from=ids.get("header_from", ""),
        envelope_from=ids.get("envelope_from", ""),
        envelope_to=ids.get("envelope_to", ""),
        reasons=reasons,
        dkim_results=dkim_results,
        spf_results=spf_results,
    )


def _source_ip(value: str, number: int) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
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
