"""Feedback reports: ARF complaints (RFC 5965) and DMARC/auth failure reports (RFC 6591).

Both arrive as multipart/report messages with a message/feedback-report part holding
`Name: value` fields, and the original message (message/rfc822) or its headers
(text/rfc822-headers). Real reporters also send:
- the feedback part base64-encoded as an attachment (Netease through Outlook);
- Hotmail JMRP complaints: multipart/mixed with only the original message attached;
- iCloud opt-outs: a plain message marked `X-Apple-Unsubscribe: true`;
- Exim failure reports in plain text, without a feedback part.
Those are recognised and kept, with `variant` saying which shape it was.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email
import email.policy
import email.utils
import hashlib
import ipaddress
import quopri
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message

from apps.reports.parsing.containers import all_parts, feedback_part, leaf_parts
from apps.reports.parsing.errors import ReportError
from mailadmin.mime import MimeTooDeep, message_from_bytes, message_from_string

MAX_ORIGINAL_HEADERS = 64 * 1024
HOTMAIL_SUBJECT = re.compile(r"complaint about message from\s+\[?([0-9a-fA-F.:]+)\]?", re.I)
EXIM_FIELDS = {
    "sender domain": "reported-domain",
    "sender ip address": "source-ip",
    "received date": "arrival-date",
    "spf alignment": "spf-alignment",
    "dkim alignment": "dkim-alignment",
    "dmarc results": "dmarc-results",
}
EXIM_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z ]+?):\s*(.*?)\s*$")
EXIM_HEADERS_MARK = re.compile(r"^-+ This is a copy of the headers", re.M)
DMARC_FAILURE_TEXT = re.compile(r"failed the published DMARC policy|DMARC (forensic|failure)", re.I)


@dataclass
class Feedback:
    kind: str  # "arf" or "dmarc-failure"
    feedback_type: str
    report_id: str
    reporter: str  # the reporting organisation: the domain of the report's sender
    reporter_email: str
    subject: str
    date: datetime | None
    source_ip: str | None
    domain: str  # what the report is about: Reported-Domain, else the original From's
    fields: dict[str, list[str]] = field(default_factory=dict)
    original_headers: str = ""
    original: dict[str, str] = field(default_factory=dict)
    variant: str = ""  # empty for the RFC shape; else the non-standard shape recognised

    def first(self, name: str) -> str:
        values = self.fields.get(name.lower())
        return values[0] if values else ""


def _decoded(value) -> str:
    """A header as text: RFC 2047 words decoded, folding undone."""
    if value is None:
        return ""
    text = str(value)
    with contextlib.suppress(UnicodeError, LookupError, ValueError, binascii.Error):
        text = str(make_header(decode_header(text)))
    return " ".join(text.split())


def _address(value: str) -> str:
    return email.utils.parseaddr(value)[1].strip().lower()


def _domain_of(address: str) -> str:
    address = address.strip().strip("<>").strip()
    return address.rpartition("@")[2].lower().rstrip(".") if "@" in address else ""


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ip(value: str) -> str | None:
    """`192.0.2.1`, `[192.0.2.1]`, `192.0.2.1 (host)`, `IPv6:2001:db8::1` -> the address."""
    for token in re.split(r"[\s,;()]+", value or ""):
        token = token.strip("[]<>")
        token = token[5:] if token.lower().startswith("ipv6:") else token
        try:
            return str(ipaddress.ip_address(token))
        except ValueError:
            continue
    return None


def _fields_from_items(items) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for name, value in items:
        key = str(name).strip().lower()
        text = str(value)
        if key == "dkim-canonicalized-body" or key == "dkim-canonicalized-header":
            text = "".join(text.split())  # folded base64
        else:
            text = " ".join(text.split())
        fields.setdefault(key, []).append(text)
    return fields


def _feedback_fields(part: Message) -> dict[str, list[str]]:
    """The fields of a message/feedback-report part, however it was encoded."""
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    inner = part.get_payload(0) if part.is_multipart() else None
    if inner is not None and encoding not in {"base64", "quoted-printable"}:
        return _fields_from_items(inner.items())
    if inner is not None:
        raw = inner.as_bytes()
    else:
        payload = part.get_payload()
        raw = payload.encode("utf-8", "replace") if isinstance(payload, str) else b""
    if encoding == "base64":
        compact = re.sub(rb"\s+", b"", raw)
        try:
            raw = base64.b64decode(compact + b"=" * (-len(compact) % 4))
        except (binascii.Error, ValueError):
            raise ReportError("The feedback part is not valid base64.") from None
    elif encoding == "quoted-printable":
        raw = quopri.decodestring(raw)
    parsed = _message(raw.lstrip(b"\r\n"))
    return _fields_from_items(parsed.items())


def _message(raw: bytes | str) -> Message:
    """A part's bytes (or text) as a message, its MIME nesting bounded."""
    try:
        return message_from_bytes(raw) if isinstance(raw, bytes) else message_from_string(raw)
    except MimeTooDeep as exc:
        raise ReportError(exc.message) from None


def _original(message: Message) -> tuple[str, dict[str, str]]:
    """The original message's header block and its main headers, from either shape."""
    for part in all_parts(message):
        ctype = part.get_content_type()
        if ctype in {"message/rfc822", "message/global"} and part.is_multipart():
            inner = part.get_payload(0)
            return _header_block(inner), _summary(inner)
        if ctype in {"text/rfc822-headers", "message/rfc822-headers", "text/rfc822"}:
            payload = part.get_payload(decode=True) or b""
            inner = _message(payload)
            return _header_block(inner), _summary(inner)
    return "", {}


def _header_block(message: Message) -> str:
    lines = [f"{name}: {value}" for name, value in message.items()]
    return "\n".join(lines)[:MAX_ORIGINAL_HEADERS]


def _summary(message: Message) -> dict[str, str]:
    summary = {}
    for name in ("From", "To", "Subject", "Message-ID", "Date"):
        value = _decoded(message.get(name))
        if value:
            summary[name.lower()] = value
    return summary


def _text_body(message: Message) -> str:
    for part in leaf_parts(message):
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True) or b""
            charset = part.get_content_charset() or "utf-8"
            try:
                return payload.decode(charset, errors="replace")
            except LookupError:
                return payload.decode("utf-8", errors="replace")
    return ""


def classify(message: Message) -> tuple[str, str, str] | None:
    """(kind, feedback type, variant) of a non-standard feedback message, else None."""
    if feedback_part(message) is not None:
        return None
    subject = _decoded(message.get("Subject"))
    has_original = any(
        p.get_content_type() in {"message/rfc822", "text/rfc822-headers"}
        for p in all_parts(message)
    )
    if has_original and HOTMAIL_SUBJECT.search(subject):
        return "arf", "abuse", "Hotmail JMRP complaint (multipart/mixed, no feedback part)"
    if str(message.get("X-Apple-Unsubscribe", "")).strip().lower() == "true":
        return "arf", "opt-out", "iCloud unsubscribe (plain message, no feedback part)"
    if message.get_content_type() == "multipart/report" or DMARC_FAILURE_TEXT.search(subject):
        body = _text_body(message)
        if DMARC_FAILURE_TEXT.search(body) and "sender ip address:" in body.lower():
            return "dmarc-failure", "auth-failure", "plain-text failure report (Exim)"
    return None


def is_feedback(message: Message) -> bool:
    return feedback_part(message) is not None or classify(message) is not None


def parse_feedback(message: Message, *, raw: bytes = b"") -> Feedback:
    """One feedback report from its message (see `classify` for the shapes accepted)."""
    part = feedback_part(message)
    variant = ""
    original_headers, original = _original(message)
    if part is not None:
        fields = _feedback_fields(part)
        feedback_type = (fields.get("feedback-type") or [""])[0].strip().lower()
        if not feedback_type:
            raise ReportError("The feedback report has no Feedback-Type field.")
    else:
        shape = classify(message)
        if shape is None:
            raise ReportError("The message is not a feedback report: it has no feedback part.")
        kind, feedback_type, variant = shape
        fields = {"feedback-type": [feedback_type]}
        if variant.startswith("Hotmail"):
            match = HOTMAIL_SUBJECT.search(_decoded(message.get("Subject")))
            fields["source-ip"] = [match.group(1)] if match else []
            recipient = _original_header(message, "X-HmXmrOriginalRecipient")
            if recipient:
                fields["original-rcpt-to"] = [recipient]
        elif variant.startswith("plain-text"):
            original_headers, original = _exim(message, fields)
        fields = {k: v for k, v in fields.items() if v}
    kind = "dmarc-failure" if feedback_type == "auth-failure" else "arf"
    reporter_email = _address(_decoded(message.get("From")))
    reported = [d.strip().lower().rstrip(".") for d in fields.get("reported-domain", [])]
    domain = next((d for d in reported if d), "")
    if not domain:
        domain = _domain_of(_address(original.get("from", "")))
    if not domain:
        domain = _domain_of(_address((fields.get("original-mail-from") or [""])[0]))
    if not domain and variant.startswith("iCloud"):
        domain = _domain_of(_address(_decoded(message.get("To"))))
    message_id = _decoded(message.get("Message-ID")).strip().strip("<>")
    report_id = message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    date = _date((fields.get("arrival-date") or fields.get("received-date") or [""])[0])
    return Feedback(
        kind=kind,
        feedback_type=feedback_type,
        report_id=report_id[:255],
        reporter=_domain_of(reporter_email) or reporter_email,
        reporter_email=reporter_email,
        subject=_decoded(message.get("Subject")),
        date=date or _date(str(message.get("Date", ""))),
        source_ip=_ip((fields.get("source-ip") or [""])[0]),
        domain=domain,
        fields=fields,
        original_headers=original_headers,
        original=original,
        variant=variant,
    )


def _original_header(message: Message, name: str) -> str:
    for part in all_parts(message):
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            value = part.get_payload(0).get(name)
            if value:
                return _decoded(value)
    return ""


def _exim(message: Message, fields: dict[str, list[str]]) -> tuple[str, dict[str, str]]:
    """Fields and original headers from Exim's plain-text failure report."""
    body = _text_body(message)
    mark = EXIM_HEADERS_MARK.search(body)
    summary_text = body[: mark.start()] if mark else body
    for line in summary_text.splitlines():
        match = EXIM_FIELD.match(line)
        if match and match.group(1).lower() in EXIM_FIELDS:
            fields[EXIM_FIELDS[match.group(1).lower()]] = [match.group(2)]
    if not mark:
        return "", {}
    block = body[mark.end() :].split("\n", 1)[-1].lstrip("\n")
    inner = _message(block)
    return _header_block(inner), _summary(inner)
