"""Our own outgoing reports: DMARC aggregate reports (RFC 7489) to the senders whose mail we
received, and TLS-RPT reports (RFC 8460) to the domains we delivered to.

1. The inbound path records each message's authentication outcome per header-from domain
   (`record_inbound_auth`, after the spam filter's scan); the delivery worker records each
   attempt's TLS outcome (`record_tls_outcome`).
2. Once a day a run (Celery beat → `reports.outgoing`, on the task base) builds, for the
   previous UTC day, one gzip report per domain that asks for reports: the header-from
   domain's DMARC record (`_dmarc.<domain>`, else its organizational domain's) for DMARC,
   `_smtp._tls.<domain>` for TLS-RPT, looked up in DNS. Each becomes an OutgoingReport row,
   queued until `send_after` (cancellable until then: DELETE /api/queue/reports/{id}).
3. `outgoing_reports_send` (beat, every 10 minutes) hands due rows to the outbound queue
   (`apps.queue.services.enqueue`) as mail with the RFC's subject, headers and file name;
   the row is marked sent in the same transaction as the queued message is written.
"""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree as ET  # noqa: S405 - building XML, never parsing it

import dns.exception
import dns.resolver
import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from publicsuffixlist import PublicSuffixList

from apps.accounts.models import Principal
from apps.accounts.permissions import Perm
from apps.queue.services import enqueue
from apps.reports.failure import (
    failure_message,
    failure_recipients,
    failure_report_queue,
)
from apps.reports.models import (
    InboundAuthResult,
    OutboundTlsResult,
    OutgoingReport,
)
from mailadmin.audit import audit
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import Outcome, Progress, task_run_start
from mailadmin.dns import make_resolver
from mailadmin.errors import Conflict, NotFound, PermissionDenied

log = logging.getLogger(__name__)

OUTGOING_TASK = "reports.outgoing"
SEND_DELAY = timedelta(hours=1)  # the window in which a queued report can be cancelled
KEEP_OUTCOMES = timedelta(days=8)  # recorded outcomes, past the report that used them
KEEP_REPORTS = timedelta(days=30)  # sent, failed and cancelled rows
MAX_SEND_ATTEMPTS = 5
# A failed POST to a TLS-RPT https: endpoint is tried again after these waits, then given up.
HTTPS_BACKOFF = (timedelta(minutes=10), timedelta(minutes=30), timedelta(hours=2),
                 timedelta(hours=6))  # fmt: skip
MAX_HTTPS_ATTEMPTS = len(HTTPS_BACKOFF) + 1
SEND_LEASE = timedelta(minutes=15)  # a worker posting a report holds it this long at most
RUF_DNS_RETRY = timedelta(minutes=10)  # a failure report whose ruf check met a DNS failure
MAX_RECIPIENTS = 10
DMARC_NS = None  # RFC 7489 aggregate reports carry no namespace
TLS_RESULT_TYPES = {
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
}

_psl: PublicSuffixList | None = None


def organizational_domain(name: str) -> str:
    """RFC 7489 3.2: the registered domain (example.co.uk for a.b.example.co.uk)."""
    global _psl
    if _psl is None:
        _psl = PublicSuffixList()
    name = name.rstrip(".").lower()
    return _psl.privatesuffix(name) or name


def _domain(value: str) -> str:
    return (value or "").strip().rpartition("@")[2].rstrip(".").lower()[:255]


# --- recording outcomes ---------------------------------------------------------------------


@dataclass(frozen=True)
class DmarcVerdict:
    """DMARC's verdict for one header-from domain of a message."""

    header_from: str
    result: str  # "pass" | "fail"; anything else (none, temperror, ...) is not reported
    spf_aligned: bool
    dkim_aligned: bool
    disposition: str = "none"  # what we did: none | quarantine | reject
    reasons: Sequence[dict] = ()  # policy overrides: [{"type": "local_policy", "comment"}]
    policy: Mapping[str, str] = field(default_factory=dict)  # the DMARC record's tags
    record_domain: str = ""  # where the record was found (header-from or its org domain)


def record_inbound_auth(
    *,
    source_ip: str | None,
    envelope_from: str,
    spf_domain: str,
    spf_result: str,
    dkim_results: Sequence[dict],
    verdicts: Sequence[DmarcVerdict],
    spf_scope: str = "mfrom",
    received_at: datetime | None = None,
    original: bytes = b"",
    authentication_results: str = "",
    delivery_result: str = "",
) -> list[InboundAuthResult]:
    """Record one received message's authentication outcome, one row per header-from
    domain (the inbound path calls this after the spam filter's scan), and queue a DMARC
    failure report where the domain's record asks for one (`failure.failure_report_queue`:
    `original` is the message, of which only the headers are kept).

    `dkim_results`: every signature checked, as {"domain", "selector", "result"}
    (result: none, pass, fail, policy, neutral, temperror, permerror). `spf_domain` is the
    domain SPF checked (MAIL FROM's, or HELO's when MAIL FROM was empty).
    """
    when = received_at or timezone.now()
    dkim = [
        {
            "domain": _domain(str(d.get("domain", ""))),
            "selector": str(d.get("selector", ""))[:255],
            "result": str(d.get("result", "none")).lower()[:16],
        }
        for d in dkim_results
    ]
    rows = [
        InboundAuthResult(
            received_at=when,
            source_ip=source_ip or None,
            envelope_from=_domain(envelope_from),
            header_from=_domain(v.header_from),
            spf_domain=_domain(spf_domain),
            spf_scope=(spf_scope or "mfrom")[:8],
            spf_result=(spf_result or "none").lower()[:16],
            dkim_results=dkim,
            dkim_aligned="pass" if v.dkim_aligned else "fail",
            spf_aligned="pass" if v.spf_aligned else "fail",
            # temperror/permerror: no evaluable policy, so nothing to report (as none)
            dmarc_result=v.result.lower() if v.result.lower() in ("pass", "fail") else "none",
            disposition=(v.disposition or "none").lower()[:16],
            reasons=[dict(r) for r in v.reasons],
        )
        for v in verdicts
        if _domain(v.header_from)
    ]
    created = InboundAuthResult.objects.bulk_create(rows)
    for verdict in verdicts:
        if not (verdict.policy.get("ruf") and original and _domain(verdict.header_from)):
            continue
        try:
            with transaction.atomic():
                failure_report_queue(
                    header_from=_domain(verdict.header_from),
                    policy=verdict.policy,
                    record_domain=_domain(verdict.record_domain),
                    dmarc_result=verdict.result.lower(),
                    spf_aligned=verdict.spf_aligned,
                    dkim_aligned=verdict.dkim_aligned,
                    spf_domain=_domain(spf_domain),
                    spf_result=(spf_result or "none").lower(),
                    dkim_results=dkim,
                    source_ip=source_ip,
                    envelope_from=envelope_from,
                    original=original,
                    authentication_results=authentication_results,
                    disposition=verdict.disposition,
                    delivery_result=delivery_result,
                    received_at=when,
                )
        except Exception:  # a report we owe others never costs the message
            log.exception("could not queue a DMARC failure report for %s", verdict.header_from)
    return created


def record_tls_outcome(
    *,
    recipient_domain: str,
    mx_host: str,
    success: bool,
    result_type: str = "",
    policy_type: str = "no-policy-found",
    policy_string: Sequence[str] = (),
    sending_ip: str | None = None,
    receiving_ip: str | None = None,
    failure_reason: str = "",
    additional_info: str = "",
    attempted_at: datetime | None = None,
) -> OutboundTlsResult:
    """Record one outbound delivery attempt's TLS outcome (the queue calls this per
    attempt). `policy_type`: sts, tlsa or no-policy-found; a failure's `result_type` is one
    of RFC 8460 4.3's (anything else is recorded as validation-failure)."""
    kind = (result_type or "").lower()
    if not success and kind not in TLS_RESULT_TYPES:
        kind = "validation-failure"
    return OutboundTlsResult.objects.create(
        attempted_at=attempted_at or timezone.now(),
        recipient_domain=_domain(recipient_domain),
        mx_host=mx_host.rstrip(".").lower()[:255],
        policy_type=(policy_type or "no-policy-found")[:16],
        policy_string=list(policy_string),
        success=success,
        result_type="" if success else kind,
        sending_ip=sending_ip or None,
        receiving_ip=receiving_ip or None,
        failure_reason=failure_reason[:255],
        additional_info=additional_info[:1024],
    )


# --- where reports go (DNS) -----------------------------------------------------------------


class LookupFailed(Exception):
    """DNS did not answer: try the domain again at the next run."""


def _txt(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise LookupFailed(f"{name}: {type(exc).__name__}") from exc
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def _tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            tags.setdefault(key.strip().lower(), value.strip())
    return tags


def _mailto(uris: str) -> tuple[list[str], list[str]]:
    """(the URIs, the mailto: addresses among them without size limits)."""
    found, addresses = [], []
    for uri in (u.strip() for u in uris.split(",")):
        if not uri:
            continue
        found.append(uri)
        if uri.lower().startswith("mailto:"):
            address = unquote(uri[len("mailto:") :].split("!", 1)[0]).strip()
            if "@" in address and address not in addresses:
                addresses.append(address)
    return found, addresses


def _https(uris: Iterable[str]) -> list[str]:
    """The https: URIs with a host (RFC 8460 3: reports are POSTed there)."""
    endpoints = []
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme.lower() == "https" and parts.hostname and uri not in endpoints:
            endpoints.append(uri)
    return endpoints


@dataclass(frozen=True)
class Destination:
    rua: list[str]  # as published
    recipients: list[str]  # where we send: mailto: addresses that accept our report
    policy: dict[str, str]  # DMARC: the published record's tags
    endpoints: Sequence[str] = ()  # TLS-RPT: https: URIs we POST to


def dmarc_destination(resolver: dns.resolver.Resolver, domain: str) -> Destination | None:
    """The DMARC record of `domain` (else of its organizational domain) and its rua
    addresses that accept reports about `domain` (RFC 7489 7.1: an address outside the
    organizational domain must publish `<domain>._report._dmarc.<its domain>`)."""
    record = source = None
    for name in dict.fromkeys((domain, organizational_domain(domain))):
        found = [t for t in _txt(resolver, f"_dmarc.{name}") if t.lower().startswith("v=dmarc1")]
        if len(found) == 1:
            record, source = found[0], name
            break
    if record is None or source is None:
        return None
    tags = _tags(record)
    rua, addresses = _mailto(tags.get("rua", ""))
    accepted = accepting_addresses(resolver, source, addresses)
    return Destination(rua=rua, recipients=accepted, policy=tags)


def accepting_addresses(
    resolver: dns.resolver.Resolver, source: str, addresses: Sequence[str]
) -> list[str]:
    """RFC 7489 7.1: of the rua/ruf `addresses` of the record found at `source`, those in
    its organizational domain, and those outside it whose domain publishes
    `<source>._report._dmarc.<their domain>` (v=DMARC1)."""
    mine = organizational_domain(source)
    accepted = []
    for address in addresses[:MAX_RECIPIENTS]:
        target = _domain(address)
        if organizational_domain(target) != mine:
            proof = _txt(resolver, f"{source}._report._dmarc.{target}")
            if not any(t.lower().startswith("v=dmarc1") for t in proof):
                log.info("%s does not accept DMARC reports for %s", target, source)
                continue
        accepted.append(address)
    return accepted


def tls_destination(resolver: dns.resolver.Resolver, domain: str) -> Destination | None:
    """The `_smtp._tls` record's rua (RFC 8460 3): mailto: addresses and https: endpoints."""
    found = [
        t for t in _txt(resolver, f"_smtp._tls.{domain}") if t.lower().startswith("v=tlsrptv1")
    ]
    if len(found) != 1:
        return None
    rua, addresses = _mailto(_tags(found[0]).get("rua", ""))
    return Destination(
        rua=rua,
        recipients=addresses[:MAX_RECIPIENTS],
        policy={},
        endpoints=_https(rua)[:MAX_RECIPIENTS],
    )


# --- building the reports -------------------------------------------------------------------


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def report_filename(kind: str, domain: str, begin: datetime, end: datetime) -> str:
    """RFC 7489 7.2.1.1 `receiver!policy-domain!begin!end.xml.gz` / RFC 8460 5.3
    `sender!policy-domain!begin!end.json.gz` (timestamps in seconds since the epoch)."""
    extension = "xml.gz" if kind == OutgoingReport.Kind.DMARC else "json.gz"
    return f"{settings.MAILADMIN_HOSTNAME}!{domain}!{_ts(begin)}!{_ts(end)}.{extension}"


def _sub(parent: ET.Element, tag: str, text: object | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = str(text)
    return element


def dmarc_rows(domain: str, begin: datetime, end: datetime) -> list[tuple[tuple, int]]:
    """The day's outcomes for `domain` grouped as aggregate records: (key, count)."""
    counts: Counter[tuple] = Counter()
    rows = InboundAuthResult.objects.filter(
        received_at__gte=begin, received_at__lt=end, header_from=domain
    ).values_list(
        "source_ip",
        "disposition",
        "dkim_aligned",
        "spf_aligned",
        "envelope_from",
        "spf_domain",
        "spf_scope",
        "spf_result",
        "dkim_results",
        "reasons",
    )
    for row in rows.iterator(chunk_size=2000):
        *plain, dkim, reasons = row
        key = (*plain, json.dumps(dkim, sort_keys=True), json.dumps(reasons, sort_keys=True))
        counts[key] += 1
    return sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))


def build_dmarc_xml(
    *,
    domain: str,
    begin: datetime,
    end: datetime,
    report_id: str,
    policy: dict[str, str],
    rows: Iterable[tuple[tuple, int]],
) -> bytes:
    feedback = ET.Element("feedback")
    _sub(feedback, "version", "1.0")
    meta = _sub(feedback, "report_metadata")
    _sub(meta, "org_name", settings.MAILADMIN_REPORTS_ORG_NAME)
    _sub(meta, "email", settings.MAILADMIN_REPORTS_FROM)
    _sub(meta, "report_id", report_id)
    span = _sub(meta, "date_range")
    _sub(span, "begin", _ts(begin))
    _sub(span, "end", _ts(end))
    published = _sub(feedback, "policy_published")
    _sub(published, "domain", domain)
    _sub(published, "adkim", (policy.get("adkim") or "r").lower())
    _sub(published, "aspf", (policy.get("aspf") or "r").lower())
    _sub(published, "p", (policy.get("p") or "none").lower())
    _sub(published, "sp", (policy.get("sp") or policy.get("p") or "none").lower())
    _sub(published, "pct", policy.get("pct") or "100")
    _sub(published, "fo", policy.get("fo") or "0")
    for key, count in rows:
        (ip, disposition, dkim, spf, envelope_from, spf_domain, scope, spf_result, dkim_json,
         reasons_json) = key  # fmt: skip
        record = _sub(feedback, "record")
        row = _sub(record, "row")
        _sub(row, "source_ip", ip or "")
        _sub(row, "count", count)
        evaluated = _sub(row, "policy_evaluated")
        _sub(evaluated, "disposition", disposition)
        _sub(evaluated, "dkim", dkim)
        _sub(evaluated, "spf", spf)
        for reason in json.loads(reasons_json):
            element = _sub(evaluated, "reason")
            _sub(element, "type", reason.get("type", "other"))
            if reason.get("comment"):
                _sub(element, "comment", reason["comment"])
        identifiers = _sub(record, "identifiers")
        if envelope_from:
            _sub(identifiers, "envelope_from", envelope_from)
        _sub(identifiers, "header_from", domain)
        results = _sub(record, "auth_results")
        for signature in json.loads(dkim_json):
            element = _sub(results, "dkim")
            _sub(element, "domain", signature["domain"])
            if signature.get("selector"):
                _sub(element, "selector", signature["selector"])
            _sub(element, "result", signature["result"])
        element = _sub(results, "spf")
        _sub(element, "domain", spf_domain)
        _sub(element, "scope", scope)
        _sub(element, "result", spf_result)
    return ET.tostring(feedback, encoding="utf-8", xml_declaration=True)


def build_tls_json(*, domain: str, begin: datetime, end: datetime, report_id: str) -> dict:
    """RFC 8460 4: one policy entry per (policy type, policy string, MX host)."""
    attempts = OutboundTlsResult.objects.filter(
        attempted_at__gte=begin, attempted_at__lt=end, recipient_domain=domain
    ).values_list(
        "policy_type",
        "policy_string",
        "mx_host",
        "success",
        "result_type",
        "sending_ip",
        "receiving_ip",
        "failure_reason",
        "additional_info",
    )
    policies: dict[tuple, dict] = {}
    for (ptype, pstring, mx, ok, result, sending, receiving, reason, info) in attempts.iterator(
        chunk_size=2000
    ):  # fmt: skip
        key = (ptype, json.dumps(pstring), mx if ptype != "no-policy-found" else "")
        entry = policies.setdefault(key, {"ok": 0, "fail": 0, "details": Counter()})
        if ok:
            entry["ok"] += 1
        else:
            entry["fail"] += 1
            entry["details"][(result, sending, mx, receiving, reason, info)] += 1
    items = []
    for (ptype, pstring, mx), entry in sorted(policies.items()):
        policy = {"policy-type": ptype, "policy-domain": domain}
        if json.loads(pstring):
            policy["policy-string"] = json.loads(pstring)
        if mx:
            policy["mx-host"] = [mx]
        details = []
        for (result, sending, host, receiving, reason, info), count in sorted(
            entry["details"].items(), key=lambda item: (-item[1], str(item[0]))
        ):
            detail = {"result-type": result, "failed-session-count": count}
            if sending:
                detail["sending-mta-ip"] = sending
            if host:
                detail["receiving-mx-hostname"] = host
            if receiving:
                detail["receiving-ip"] = receiving
            if reason:
                detail["failure-reason-code"] = reason
            if info:
                detail["additional-information"] = info
            details.append(detail)
        item = {
            "policy": policy,
            "summary": {
                "total-successful-session-count": entry["ok"],
                "total-failure-session-count": entry["fail"],
            },
        }
        if details:
            item["failure-details"] = details
        items.append(item)
    return {
        "organization-name": settings.MAILADMIN_REPORTS_ORG_NAME,
        "date-range": {
            "start-datetime": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end-datetime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "contact-info": settings.MAILADMIN_REPORTS_FROM,
        "report-id": report_id,
        "policies": items,
    }


def _report_id(domain: str, begin: datetime) -> str:
    return f"{begin:%Y%m%d}.{domain}.{uuid.uuid4().hex[:12]}@{settings.MAILADMIN_HOSTNAME}"


def _day(day: date | None) -> tuple[datetime, datetime]:
    if day is None:
        day = timezone.now().astimezone(UTC).date() - timedelta(days=1)
    begin = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return begin, begin + timedelta(days=1)


def _queue(kind: str, domain: str, begin: datetime, end: datetime, **fields) -> bool:
    try:
        with transaction.atomic():
            OutgoingReport.objects.create(
                kind=kind,
                policy_domain=domain,
                range_begin=begin,
                range_end=end,
                filename=report_filename(kind, domain, begin, end),
                send_after=timezone.now() + SEND_DELAY,
                **fields,
            )
    except IntegrityError:
        return False  # built by an earlier run
    return True


def outgoing_reports_generate(*, progress: Progress, day: date | None = None) -> Outcome:
    """Build the reports of one UTC day (yesterday by default). Safe to repeat: a domain
    already reported for that day is skipped; one whose DNS failed is tried next run."""
    begin, end = _day(day)
    resolver = make_resolver()
    done_before = set(
        OutgoingReport.objects.filter(range_begin=begin).values_list("kind", "policy_domain")
    )
    dmarc_domains = sorted(
        set(
            InboundAuthResult.objects.filter(received_at__gte=begin, received_at__lt=end)
            .exclude(dmarc_result="none")
            .values_list("header_from", flat=True)
            .order_by()
            .distinct()
        )
    )
    tls_domains = sorted(
        set(
            OutboundTlsResult.objects.filter(attempted_at__gte=begin, attempted_at__lt=end)
            .values_list("recipient_domain", flat=True)
            .order_by()
            .distinct()
        )
    )
    todo = [("dmarc", d) for d in dmarc_domains] + [("tls", d) for d in tls_domains]
    todo = [(kind, d) for kind, d in todo if (kind, d) not in done_before]
    progress.begin(len(todo))
    queued = no_rua = failed = 0
    for number, (kind, domain) in enumerate(todo, 1):
        try:
            if kind == "dmarc":
                made = _generate_dmarc(resolver, domain, begin, end)
            else:
                made = _generate_tls(resolver, domain, begin, end)
        except LookupFailed as exc:
            failed += 1
            progress.step(number, f"{kind} {domain}: DNS failed ({exc})")
            continue
        queued += made
        no_rua += not made
        progress.step(number, f"{kind} {domain}: {'queued' if made else 'no report address'}")
    purged = _purge_old()
    message = (
        f"{queued} reports queued for {begin:%Y-%m-%d}, {no_rua} domains ask for none, "
        f"{failed} DNS failures."
    )
    return Outcome(True, message, {"queued": queued, "noRua": no_rua, "dnsFailures": failed,
                                   "purged": purged})  # fmt: skip


def _generate_dmarc(resolver, domain: str, begin: datetime, end: datetime) -> bool:
    destination = dmarc_destination(resolver, domain)
    if destination is None or not destination.recipients:
        return False
    rows = dmarc_rows(domain, begin, end)
    report_id = _report_id(domain, begin)
    xml = build_dmarc_xml(
        domain=domain,
        begin=begin,
        end=end,
        report_id=report_id,
        policy=destination.policy,
        rows=rows,
    )
    return _queue(
        OutgoingReport.Kind.DMARC,
        domain,
        begin,
        end,
        report_id=report_id,
        rua=destination.rua,
        recipients=destination.recipients,
        payload=gzip.compress(xml, mtime=0),
        record_count=len(rows),
        message_count=sum(count for _, count in rows),
    )


def _generate_tls(resolver, domain: str, begin: datetime, end: datetime) -> bool:
    destination = tls_destination(resolver, domain)
    if destination is None or not (destination.recipients or destination.endpoints):
        return False
    report_id = _report_id(domain, begin)
    body = build_tls_json(domain=domain, begin=begin, end=end, report_id=report_id)
    sessions = sum(
        p["summary"]["total-successful-session-count"] + p["summary"]["total-failure-session-count"]
        for p in body["policies"]
    )
    return _queue(
        OutgoingReport.Kind.TLS,
        domain,
        begin,
        end,
        report_id=report_id,
        rua=destination.rua,
        recipients=destination.recipients,
        endpoints=list(destination.endpoints),
        deliveries=[_pending(uri) for uri in destination.endpoints],
        payload=gzip.compress(json.dumps(body).encode(), mtime=0),
        record_count=len(body["policies"]),
        message_count=sessions,
    )


def _purge_old() -> int:
    now = timezone.now()
    removed = InboundAuthResult.objects.filter(received_at__lt=now - KEEP_OUTCOMES).delete()[0]
    removed += OutboundTlsResult.objects.filter(attempted_at__lt=now - KEEP_OUTCOMES).delete()[0]
    removed += (
        OutgoingReport.objects.filter(created_at__lt=now - KEEP_REPORTS)
        .exclude(status=OutgoingReport.Status.QUEUED)
        .delete()[0]
    )
    return removed


def outgoing_reports_start(*, day: date | None = None) -> TaskRun:
    """Beat, daily: the run that builds yesterday's reports (one per day)."""
    begin, _ = _day(day)
    return task_run_start(
        actor=None,
        kind=f"{OUTGOING_TASK}:{begin:%Y-%m-%d}",
        title=f"Build outgoing DMARC and TLS reports for {begin:%Y-%m-%d}",
        task_name=OUTGOING_TASK,
        tenant_id=None,
        arguments={"day": f"{begin:%Y-%m-%d}"},
    )


# --- the message ----------------------------------------------------------------------------


def report_message(report: OutgoingReport) -> bytes:
    """The mail carrying `report`: RFC 7489 7.2.1.1 (DMARC) or RFC 8460 5.3 (TLS-RPT), or
    a failure report (RFC 6591)."""
    if report.kind == OutgoingReport.Kind.FAILURE:
        return failure_message(report)
    submitter = settings.MAILADMIN_HOSTNAME
    message = EmailMessage()
    message["From"] = settings.MAILADMIN_REPORTS_FROM
    message["To"] = ", ".join(report.recipients)
    message["Date"] = format_datetime(timezone.now().astimezone(UTC))
    message["Message-ID"] = make_msgid(domain=submitter)
    message["Subject"] = (
        f"Report Domain: {report.policy_domain} Submitter: {submitter} "
        f"Report-ID: <{report.report_id}>"
    )
    payload = bytes(report.payload)
    if report.kind == OutgoingReport.Kind.TLS:
        message["TLS-Report-Domain"] = report.policy_domain
        message["TLS-Report-Submitter"] = submitter
        message.set_content(
            f"This is an aggregate TLS report from {submitter} for {report.policy_domain}.\n"
        )
        message.add_attachment(
            payload, maintype="application", subtype="tlsrpt+gzip", filename=report.filename
        )
        message.set_type("multipart/report")
        message.set_param("report-type", "tlsrpt")
    else:
        message.set_content(
            f"This is an aggregate DMARC report from {submitter} for {report.policy_domain}.\n"
        )
        message.add_attachment(
            payload, maintype="application", subtype="gzip", filename=report.filename
        )
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def outgoing_reports_send(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Send the queued reports whose time has come: the mail goes to the outbound queue
    (`enqueue`, in the transaction that records it: never twice), and a TLS-RPT report is
    POSTed to each https: endpoint (RFC 8460 3) outside any transaction, under a lease
    (`send_after` moved ahead, status `sending`: not cancellable, not picked up by another
    worker). A failed POST is retried with backoff (HTTPS_BACKOFF), each endpoint's state
    recorded in `deliveries`; a failed enqueue is retried at the next run. The row ends
    `sent` once everything settled with at least one destination reached, else `failed`."""
    now = now or timezone.now()
    sent = failed = 0
    for pk in list(_due(now).values_list("pk", flat=True)[:limit]):
        claimed = _send_claim(pk, now)
        if claimed is None:
            continue
        report, uris = claimed
        results = {uri: post_tls_report(report, uri) for uri in uris}
        status = _send_settle(pk, results, now) if uris else report.status
        sent += status == OutgoingReport.Status.SENT
        failed += status == OutgoingReport.Status.FAILED
    return {"sent": sent, "failed": failed}


def _pending(uri: str) -> dict:
    return {"uri": uri, "status": "pending", "attempts": 0, "http_status": None, "error": "",
            "next_attempt_at": None, "sent_at": None}  # fmt: skip


def _mail_pending(report: OutgoingReport) -> bool:
    return bool(
        report.recipients
        and report.queued_message_id is None
        and report.attempts < MAX_SEND_ATTEMPTS
    )


def _posts_due(report: OutgoingReport, now: datetime) -> list[str]:
    return [
        d["uri"]
        for d in report.deliveries
        if d["status"] == "pending"
        and (not d["next_attempt_at"] or datetime.fromisoformat(d["next_attempt_at"]) <= now)
    ]


def _send_claim(pk: int, now: datetime) -> tuple[OutgoingReport, list[str]] | None:
    """Lock the row, queue its mail if not done yet, and lease its due https: endpoints."""
    with transaction.atomic():
        report = _due(now).select_for_update(skip_locked=True).filter(pk=pk).first()
        if report is None:
            return None
        if (
            report.kind == OutgoingReport.Kind.FAILURE
            and not report.recipients
            and not _failure_destination(report, now)
        ):
            return report, []
        if _mail_pending(report):
            try:
                with transaction.atomic():
                    queued = enqueue(
                        return_path=settings.MAILADMIN_REPORTS_FROM,
                        recipients=list(report.recipients),
                        data=report_message(report),
                        tenant_id=None,
                    )
            except Exception as exc:
                log.warning("queuing report %s failed", report.pk, exc_info=True)
                report.error = f"{type(exc).__name__}: {exc}"[:1024]
            else:
                report.queued_message_id = getattr(queued, "pk", None)
                report.sent_at = timezone.now()
                report.error = ""
            report.attempts += 1
        uris = _posts_due(report, now)
        if uris:  # the lease: a worker that dies here is retried once it ends
            report.status = OutgoingReport.Status.SENDING
            report.send_after = now + SEND_LEASE
        else:
            _settle_status(report, now)
        report.save(
            update_fields=["status", "send_after", "sent_at", "queued_message_id", "attempts",
                           "error"]
        )  # fmt: skip
        return report, uris


def _failure_destination(report: OutgoingReport, now: datetime) -> bool:
    """Where a failure report may go, checked before its first send: False when DNS did
    not answer (tried again in RUF_DNS_RETRY, up to MAX_SEND_ATTEMPTS times). No address
    accepting it leaves nothing to try: the report fails."""
    try:
        report.recipients = failure_recipients(make_resolver(), report)
    except LookupFailed as exc:
        report.attempts += 1
        report.error = f"DNS: {exc}"[:1024]
        if report.attempts >= MAX_SEND_ATTEMPTS:
            report.status = OutgoingReport.Status.FAILED
        report.send_after = now + RUF_DNS_RETRY
        report.save(update_fields=["attempts", "error", "status", "send_after"])
        return False
    if not report.recipients:
        report.error = "No ruf address accepts reports for this domain (RFC 7489 7.1)."
        report.status = OutgoingReport.Status.FAILED
        report.save(update_fields=["error", "status"])
        return False
    report.save(update_fields=["recipients"])
    return True


def _send_settle(pk: int, results: dict[str, tuple[bool, int | None, str]], now: datetime) -> str:
    """Record the POSTs' outcomes (next attempt by backoff) and the row's status."""
    with transaction.atomic():
        report = OutgoingReport.objects.select_for_update().get(pk=pk)
        deliveries = []
        for delivery in report.deliveries:
            delivery = dict(delivery)
            if delivery["uri"] in results:
                ok, http_status, error = results[delivery["uri"]]
                delivery["attempts"] += 1
                delivery.update(http_status=http_status, error=error[:1024])
                if ok:
                    delivery.update(status="sent", sent_at=_iso(now), next_attempt_at=None)
                elif delivery["attempts"] >= MAX_HTTPS_ATTEMPTS:
                    delivery.update(status="failed", next_attempt_at=None)
                else:
                    wait = HTTPS_BACKOFF[delivery["attempts"] - 1]
                    delivery["next_attempt_at"] = _iso(now + wait)
            deliveries.append(delivery)
        report.deliveries = deliveries
        _settle_status(report, now)
        report.save(update_fields=["deliveries", "status", "send_after", "sent_at", "error"])
        return report.status


def _settle_status(report: OutgoingReport, now: datetime) -> None:
    """queued/sending while anything is left to try (send_after: the next try), then sent
    (some destination has it) or failed (none has). `error` is the mail's (each endpoint's
    is in its delivery)."""
    pending = [d for d in report.deliveries if d["status"] == "pending"]
    if _mail_pending(report) or pending:
        report.status = OutgoingReport.Status.SENDING
        times = [datetime.fromisoformat(d["next_attempt_at"]) for d in pending
                 if d["next_attempt_at"]]  # fmt: skip
        report.send_after = now if _mail_pending(report) or not times else min(times)
    else:
        reached = report.queued_message_id is not None or any(
            d["status"] == "sent" for d in report.deliveries
        )
        report.status = OutgoingReport.Status.SENT if reached else OutgoingReport.Status.FAILED
        if reached and report.sent_at is None:
            report.sent_at = now
        if not reached and not report.error:  # https: only, and every endpoint gave up
            report.error = "; ".join(f"{d['uri']}: {d['error']}" for d in report.deliveries)[:1024]


def post_tls_report(report: OutgoingReport, uri: str) -> tuple[bool, int | None, str]:
    """RFC 8460 3: POST the gzip report as `application/tlsrpt+gzip`; any 2xx is success.
    The certificate is verified (MAILADMIN_REPORTS_HTTPS_CA_BUNDLE, else certifi's CAs);
    redirects are not followed; proxies from the environment are not used."""
    with requests.Session() as session:
        session.trust_env = False
        try:
            response = session.post(
                uri,
                data=bytes(report.payload),
                headers={
                    "Content-Type": "application/tlsrpt+gzip",
                    "User-Agent": f"mailadmin TLS-RPT ({settings.MAILADMIN_HOSTNAME})",
                },
                timeout=settings.MAILADMIN_REPORTS_HTTPS_TIMEOUT,
                verify=settings.MAILADMIN_REPORTS_HTTPS_CA_BUNDLE or True,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            return False, None, f"TLS: {_cause(exc)}"
        except requests.RequestException as exc:
            return False, None, f"{type(exc).__name__}: {_cause(exc)}"
    if 200 <= response.status_code < 300:
        return True, response.status_code, ""
    return False, response.status_code, f"HTTP {response.status_code} {response.reason}".strip()


def _cause(exc: BaseException) -> str:
    """The innermost reason (requests wraps urllib3's, which wraps ssl's)."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return str(exc)[:300]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _due(now: datetime) -> QuerySet[OutgoingReport]:
    return OutgoingReport.objects.filter(
        status__in=(OutgoingReport.Status.QUEUED, OutgoingReport.Status.SENDING),
        send_after__lte=now,
    ).order_by("send_after", "id")


# --- the queued-reports API -----------------------------------------------------------------


def _require(actor: Principal, permission: str) -> None:
    if not actor.has_permission(permission):
        raise PermissionDenied(permission)


def outgoing_report_list(*, actor: Principal) -> QuerySet[OutgoingReport]:
    """Server-wide reports: superadmins only (anyone else sees an empty list)."""
    _require(actor, Perm.OUTGOING_REPORT_LIST)
    reports = OutgoingReport.objects.defer("payload").order_by("-created_at", "-id")
    return reports if actor.reaches_all_tenants else reports.none()


def outgoing_report_get(*, actor: Principal, report_id: int) -> OutgoingReport:
    _require(actor, Perm.OUTGOING_REPORT_GET)
    report = (
        OutgoingReport.objects.filter(pk=report_id).first() if actor.reaches_all_tenants else None
    )
    if report is None:
        raise NotFound()
    return report


class AlreadySent(Conflict):
    pass


@transaction.atomic
def outgoing_report_cancel(*, actor: Principal, report_id: int) -> OutgoingReport:
    """Cancel a report still waiting for its send time (409 once it left for the queue)."""
    _require(actor, Perm.OUTGOING_REPORT_DELETE)
    if not actor.reaches_all_tenants:
        raise NotFound()
    report = OutgoingReport.objects.select_for_update().filter(pk=report_id).first()
    if report is None:
        raise NotFound()
    if report.status != OutgoingReport.Status.QUEUED:
        raise AlreadySent(f"The report is {report.get_status_display().lower()}, not queued.")
    report.status = OutgoingReport.Status.CANCELLED
    report.save(update_fields=["status"])
    audit(
        actor=actor,
        action="report.outgoing_cancel",
        obj=report,
        object_repr=report.filename,
        changes={"kind": report.kind, "domain": report.policy_domain},
    )
    return report


def report_content(report: OutgoingReport) -> object:
    """The report as sent: the XML text (DMARC), the JSON object (TLS-RPT), or what a
    failure report is made of (the original's headers, the SMTP facts)."""
    raw = gzip.decompress(bytes(report.payload))
    if report.kind == OutgoingReport.Kind.FAILURE:
        return json.loads(raw)
    return json.loads(raw) if report.kind == OutgoingReport.Kind.TLS else raw.decode("utf-8")
