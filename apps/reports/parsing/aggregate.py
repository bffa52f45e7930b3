"""DMARC aggregate reports (RFC 7489 appendix C, RFC 9990) read as a stream.

`AggregateReader.records()` yields one record at a time. ElementTree's C parser builds
the elements with no Python call per element; after each chunk (8 KB), the children of
`<feedback>` that have ended are read and dropped, so a report of any size needs the
memory of one chunk's elements plus the parser's buffer. Security: a defusedxml parser
reads each chunk first, up to the first element (the only place declarations can stand),
and refuses entity declarations (billion laughs, XXE) before the C parser sees them; no
external DTD is ever fetched. Text runs, input without new elements, elements inside one
record and nesting are capped too.

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
from xml.etree.ElementTree import Element, ParseError, TreeBuilder, XMLParser
from xml.parsers.expat import ErrorString, ExpatError, XMLParserType

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
_TEXT_TOO_LONG = f"An element of the XML holds more than {MAX_TEXT // 1024} KB of text."
# Expat holds an unfinished token (a comment, a tag, a declaration) whole, re-scanning it
# as data arrives: input that adds no element for this long is refused.
MAX_WITHOUT_EVENT = 1024 * 1024
# Small enough that a chunk's elements (a few hundred) are read and freed before the
# garbage collector's youngest generation fills (700 objects): at 64 KB they outlived it,
# got promoted, and set off full collections, which cost most in a big process (Django's).
CHUNK = 8 * 1024
# A child of <feedback> (a record, the metadata) is held whole until it ends: one still open
# with more elements than this after a chunk is refused (a real record has a few dozen),
# and so is nesting deeper than MAX_DEPTH (a report nests 6 deep).
MAX_ELEMENTS = 10_000
MAX_DEPTH = 100
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


def _unknown_encoding(head: bytes) -> str:
    match = ENCODING_DECL.search(head[:512])
    name = match.group(1).decode("ascii") if match else ""
    return f"The XML declares an encoding that does not exist: {name!r}."


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
        # Two expat parsers read the same bytes in lockstep. The first is defusedxml's with
        # no element, text or comment handlers: it runs expat (in C) and defusedxml's
        # handlers, which raise on any entity declaration or external reference. The
        # second is ElementTree's C parser, which builds the elements we read without a
        # Python call per element. Each chunk goes to the first before the second, so
        # anything hostile raises before the second sees that chunk. Lockstep is safe
        # because both expat instances tokenise the same bytes the same way: a declaration
        # split across chunks is complete for neither until the chunk that completes it,
        # which the first refuses. Declarations can only stand in the prolog (a DOCTYPE's
        # internal subset), before the first element; after it, `<!ENTITY` is not even
        # well-formed, and the second parser stops there with expat's own error. So the
        # first parser stops at the first element: the rest of the file costs it nothing.
        guard = DefusedXMLParser(
            target=TreeBuilder(),
            forbid_dtd=False,  # a bare DOCTYPE is harmless; its entities are refused
            forbid_entities=True,
            forbid_external=True,
        )
        expat: XMLParserType | None = guard.parser
        for handler in _GUARD_SILENCED:
            setattr(expat, handler, None)
        expat.StartElementHandler = _end_of_prolog
        builder = TreeBuilder()
        parser = XMLParser(target=builder)  # noqa: S314 -- behind the guard above
        names = _NAMES
        feedback: Element | None = None
        wrappers: list[Element] = []  # the elements <feedback> sits in (IKEA)
        root: Element | None = None
        shape: tuple = ()  # the open elements and their sizes after the last chunk
        quiet = 0  # bytes fed since the last new element
        run = -1  # characters of text running at the end of the input; -1: in markup
        error: Exception | None = None
        try:
            while True:
                chunk = source.read(CHUNK)
                if expat is not None:
                    try:
                        expat.Parse(chunk, not chunk)
                    except _PrologRead:
                        expat = None
                    except ExpatError as exc:
                        error = exc  # the second parser stops at the same place
                    except LookupError:  # expat asks Python's codecs for the encoding
                        raise ReportError(_unknown_encoding(self._head)) from None
                try:
                    if chunk:
                        parser.feed(chunk)
                    else:
                        parser.close()
                except ParseError as exc:
                    error = error or exc
                except LookupError:
                    raise ReportError(_unknown_encoding(self._head)) from None
                # Text before the document element is not text (expat does not report it).
                run = _text_run(run, chunk, prolog=root is None)
                # The C builder's close() returns the document element so far (None
                # before it) and ends nothing: the builder reads on.
                root = builder.close()
                if run > MAX_TEXT:
                    if root is not None and _probe(builder) is not None:
                        raise TooLarge(_TEXT_TOO_LONG)
                    run = -1  # whitespace before or after the document element is not text
                if feedback is None and root is not None:
                    feedback, wrappers = _find_feedback(root, names)
                    if feedback is not None:
                        self.seen_feedback = True
                        self.meta.namespace = feedback.tag[1:].rpartition("}")[0]
                if error is not None or not chunk:
                    # At the end of the input every element is closed; after an error,
                    # </feedback> may or may not have been read.
                    if feedback is not None and (error is None or _closed(feedback, builder)):
                        ready = self._children(feedback, len(feedback), names)
                        self.complete = True
                        yield from ready
                    break
                if feedback is not None:
                    # Every child of <feedback> but the last has ended; the last may not.
                    if len(feedback) > 1:
                        yield from self._children(feedback, len(feedback) - 1, names)
                    if len(feedback):
                        _check_size(feedback[-1])
                    if wrappers:
                        _drop_around(feedback, wrappers)
                elif root is not None:
                    _drop_finished(root)
                now = _shape(root)
                quiet = 0 if now != shape else quiet + len(chunk)
                shape = now
                if quiet > MAX_WITHOUT_EVENT:
                    raise TooLarge(
                        f"The XML runs for more than {MAX_WITHOUT_EVENT // (1024 * 1024)} MB "
                        "without an element."
                    )
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
        if error is not None and not self.complete:  # after </feedback>, errors are harmless
            raise ReportError(_parse_error_text(error))
        if not self.seen_feedback:
            raise ReportError("The XML is not a DMARC aggregate report: it has no <feedback>.")
        if not self.complete:
            raise ReportError("The XML ends before </feedback>.")

    def _children(self, feedback: Element, count: int, names: _LocalNames) -> list:
        """Reads and drops the first `count` children of <feedback> (all ended)."""
        ready = []
        for child in feedback[:count]:
            if names[child.tag] == "record":
                ready.append(self._record(child, names))
            else:
                self._metadata(child, names)
        del feedback[:count]
        return ready

    def _record(self, element: Element, names: _LocalNames) -> AggregateRecord:
        """One <record>, read field by field the way RFC 7489 appendix C nests them."""
        self.record_count += 1
        if self.record_count > self._limits.max_records:
            raise TooLarge(f"The report has more than {self._limits.max_records:,} records.")
        number = self.record_count
        fields: dict[str, str] = {}  # row's children and policy_evaluated's
        ids: dict[str, str] = {}
        reasons: list[dict[str, str]] = []
        dkim: list[dict[str, str]] = []
        spf: list[dict[str, str]] = []
        # Loops written out: this runs for every element of every record.
        for part in element:  # row, identifiers, auth_results
            section = names[part.tag]
            if section == "row":
                for elem in part:
                    local = names[elem.tag]
                    if local == "policy_evaluated":
                        _policy_evaluated(elem, names, fields, reasons)
                    text = elem.text
                    fields[local] = text.strip() if text else ""  # source_ip, count
            elif section == "identifiers":
                for elem in part:
                    local = names[elem.tag]
                    if local == "policy_evaluated":
                        _policy_evaluated(elem, names, fields, reasons)
                    text = elem.text
                    ids[local] = text.strip() if text else ""
            elif section == "auth_results":
                for elem in part:
                    local = names[elem.tag]
                    if local == "dkim" or local == "spf":
                        item = {}
                        for field in elem:
                            text = field.text
                            item[names[field.tag]] = text.strip() if text else ""
                        if item.get("domain"):  # a result naming no domain says nothing
                            item["result"] = item.get("result", "").lower()
                            if local == "dkim":
                                dkim.append(item)
                            else:
                                item["scope"] = item.get("scope", "").lower() or "mfrom"
                                spf.append(item)
                    elif local == "policy_evaluated":
                        _policy_evaluated(elem, names, fields, reasons)
            else:
                for elem in part:
                    if names[elem.tag] == "policy_evaluated":
                        _policy_evaluated(elem, names, fields, reasons)
        get = fields.get
        return AggregateRecord(
            _source_ip(get("source_ip", ""), number),
            _count(get("count", ""), number),
            get("disposition", "").lower(),
            get("dkim", "").lower(),
            get("spf", "").lower(),
            ids.get("header_from", ""),
            ids.get("envelope_from", ""),
            ids.get("envelope_to", ""),
            reasons,
            dkim,
            spf,
        )

    def _metadata(self, element: Element, names: _LocalNames) -> None:
        """A child of <feedback> other than a record: report_metadata, policy_published,
        version; unknown ones are ignored."""
        meta = self.meta
        section = names[element.tag]
        if section == "report_metadata":
            self.has_metadata = True
        elif section == "version":
            meta.version = _text(element)
        for elem in element:
            local = names[elem.tag]
            if local == "date_range":
                for bound in elem:
                    key = names[bound.tag]
                    if key == "begin":
                        meta.begin = _timestamp(_text(bound))
                    elif key == "end":
                        meta.end = _timestamp(_text(bound))
            value = _text(elem)
            if section == "report_metadata":
                if local in ("org_name", "email", "extra_contact_info", "report_id", "generator"):
                    setattr(meta, local, value)
                elif local == "error" and value:
                    meta.errors.append(value)
            elif section == "policy_published":
                if local == "domain":
                    meta.policy["domain"] = value.lower().rstrip(".")
                elif local in POLICY_FIELDS or local == "discovery_method":
                    meta.policy[local] = value.lower()


# The defusedxml parser's handlers that would run Python for every element, text and
# comment; its entity and external-reference handlers stay.
_GUARD_SILENCED = (
    "StartElementHandler",
    "EndElementHandler",
    "CharacterDataHandler",
    "CommentHandler",
    "ProcessingInstructionHandler",
    "DefaultHandlerExpand",
    "StartNamespaceDeclHandler",
    "EndNamespaceDeclHandler",
)


class _LocalNames(dict):
    """`names[tag]`: the local name of an ElementTree tag (`{namespace}local`), memoised."""

    def __missing__(self, tag: str) -> str:
        if len(self) > 4096:  # a hostile file may invent names without end
            self.clear()
        local = self[tag] = tag.rpartition("}")[2]
        return local


_NAMES = _LocalNames()


def _policy_evaluated(
    element: Element, names: _LocalNames, fields: dict[str, str], reasons: list[dict[str, str]]
) -> None:
    for result in element:  # disposition, dkim, spf, reason
        key = names[result.tag]
        if key != "reason":
            fields[key] = _text(result)
            continue
        reason = {}
        for part in result:  # type, comment
            value = _text(part)
            if value:
                reason[names[part.tag]] = value
            else:
                reason.pop(names[part.tag], None)
        if "type" in reason:
            reason["type"] = reason["type"].lower()
        if reason:
            reasons.append(reason)


class _PrologRead(Exception):
    """Stops the first parser at the first element (see AggregateReader.records)."""


def _end_of_prolog(name: str, attributes) -> None:
    raise _PrologRead


def _find_feedback(root: Element, names: _LocalNames) -> tuple[Element | None, list[Element]]:
    """The first <feedback> in document order and the elements around it."""
    wrappers: list[Element] = []
    element = root
    while names[element.tag] != "feedback":
        found = next((e for e in element.iter() if names[e.tag] == "feedback"), None)
        if found is None:
            return None, []
        wrappers.append(element)
        element = next(child for child in element if found in child.iter())
    return element, wrappers


def _drop_finished(element: Element) -> None:
    """Drops every finished element under `element`: all but the last child of each."""
    while len(element):
        del element[:-1]
        element = element[-1]


def _drop_around(feedback: Element, wrappers: list[Element]) -> None:
    """What sits around <feedback> (IKEA's wrapper) is never read: drop it as it ends."""
    for wrapper, keep in zip(wrappers, [*wrappers[1:], feedback], strict=True):
        for child in wrapper[:-1]:
            if child is not keep:
                wrapper.remove(child)
        if wrapper[-1] is not keep:
            _drop_finished(wrapper[-1])


def _check_size(child: Element) -> None:
    """A child of <feedback> is held whole until it ends: refuse one that grows without
    end (a record has a few dozen elements)."""
    for count, _ in enumerate(child.iter()):
        if count >= MAX_ELEMENTS:
            raise TooLarge(
                f"An element of the XML holds more than {MAX_ELEMENTS:,} elements: a record "
                "has a few dozen."
            )


def _shape(root: Element | None) -> tuple:
    """The elements along the last-child chain and their sizes. A new element is added to
    the innermost open one, which is on that chain: the shape changes with every new
    element. Refuses nesting deeper than MAX_DEPTH (a report nests 6 deep)."""
    shape = []
    element = root
    while element is not None:
        size = len(element)
        shape.append((element, size))
        if len(shape) > MAX_DEPTH:
            raise TooLarge(f"The XML nests elements more than {MAX_DEPTH} deep.")
        element = element[-1] if size else None
    return tuple(shape)


def _probe(builder: TreeBuilder) -> Element | None:
    """Opens an element where the next one would go: None when the document element has
    ended. Only once the parse is over or about to be refused: the probe stays."""
    try:
        return builder.start("probe", {})
    except ParseError:  # "multiple elements on top level"
        return None


def _closed(feedback: Element, builder: TreeBuilder) -> bool:
    """After a parse error: had </feedback> been read? A probe lands in the innermost
    open element, which is inside <feedback> only while <feedback> is open."""
    probe = _probe(builder)
    return probe is None or not any(element is probe for element in feedback.iter())


def _text(element: Element) -> str:
    text = element.text
    return text.strip() if text else ""


def _text_run(run: int, chunk: bytes, *, prolog: bool) -> int:
    """The characters of text running at the end of the input once `chunk` is read (-1:
    inside markup); a run that ends in `chunk` is refused when longer than MAX_TEXT unless
    it ran in the `prolog` (the caller checks the one still running).

    Text holds no `<`, so what follows a `>` up to the next `<` is text: counting it needs
    no call per text node. It is text as written (`&amp;` is 5), and a comment or CDATA
    section ends a run, so a text node split by comments is bounded by MAX_WITHOUT_EVENT
    instead. A `>` inside an attribute or a comment can make markup look like text, and
    whitespace after the document element counts when a comment follows it: both are then
    refused as text.
    """
    first = chunk.find(b"<")
    if first < 0:
        if run >= 0:
            run += _characters(chunk)
        else:
            end = chunk.rfind(b">")
            if end >= 0:
                run = _characters(chunk[end + 1 :])
    else:
        if run >= 0 and not prolog and run + _characters(chunk[:first]) > MAX_TEXT:
            raise TooLarge(_TEXT_TOO_LONG)  # a run that ends at this chunk's first `<`
        end = chunk.rfind(b">")
        run = _characters(chunk[end + 1 :]) if end > chunk.rfind(b"<") else -1
    return run


def _characters(data: bytes) -> int:
    """Characters in UTF-8 (what every document is once repaired): continuation bytes
    are not counted. Other encodings count bytes, which is stricter."""
    return len(data) if data.isascii() else len(data.translate(None, _CONTINUATION_BYTES))


_CONTINUATION_BYTES = bytes(range(0x80, 0xC0))


def _parse_error_text(exc: ExpatError | ParseError) -> str:
    message = ErrorString(exc.code) or str(exc)
    if isinstance(exc, ParseError):  # the C parser's: only "undefined entity" reaches here
        line, column = exc.position
    else:
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
    if not (value.isascii() and value.isdigit()) or len(value) > 15:
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
