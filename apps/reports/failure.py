"""Our outgoing DMARC failure reports (RFC 7489 7.3, in the AFRF format of RFC 6591).

When a received message fails authentication for a header-from domain whose DMARC record
publishes `ruf`, and the record's `fo` options ask for it (0, the default: DMARC failed,
SPF and DKIM both unaligned; 1: either did not give an aligned pass; d: a DKIM signature of
any domain failed to verify; s: SPF failed), `failure_report_queue` (called by
`record_inbound_auth`, in the inbound path) keeps what the report needs: the original
message's header block only (the body is never kept nor sent), the SMTP facts and our
Authentication-Results. It is an OutgoingReport of kind `failure`, due at once and capped
at MAILADMIN_REPORTS_RUF_PER_HOUR per reported domain per hour.

`outgoing_reports_send` then checks where it may go (RFC 7489 7.1: a ruf address outside
the record's organizational domain must publish `<record domain>._report._dmarc.<its
domain>`, looked up then, not in the SMTP transaction) and hands `failure_message` to the
outbound queue.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import dns.resolver
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.reports.models import OutgoingReport

log = logging.getLogger(__name__)

MAX_HEADERS = 64 * 1024  # the original header block kept (the rest is cut at a line)
DELIVERY_RESULTS = {"reject": "reject", "quarantine": "spam"}
FEEDBACK_REPORT = re.compile(
    r"^content-type:[^\n]*(?:\n[ \t][^\n]*)*report-type\s*=\s*\"?feedback-report",
    re.IGNORECASE | re.MULTILINE,
)


def fo_trigger(
    fo: str,
    *,
    dmarc_result: str,
    spf_aligned: bool,
    dkim_aligned: bool,
    spf_result: str,
    dkim_results: Sequence[Mapping],
) -> str | None:
    """RFC 7489 6.3 `fo`: the Auth-Failure a report is due for ("dmarc", "dkim", "spf"),
    or None. Unknown options are ignored; none valid means the default, 0."""
    options = {o.strip().lower() for o in (fo or "0").split(":")} & {"0", "1", "d", "s"}
    options = options or {"0"}
    if "0" in options and dmarc_result == "fail":
        return "dmarc"
    if "1" in options and dmarc_result in ("pass", "fail") and not (spf_aligned and dkim_aligned):
        return "dmarc"
    if "d" in options and any(str(d.get("result", "")).lower() == "fail" for d in dkim_results):
        return "dkim"
    if "s" in options and spf_result.lower() == "fail":
        return "spf"
    return None


def _header_block(message: bytes) -> str:
    """The original's headers, never its body (RFC 6591 text/rfc822-headers)."""
    data = message.replace(b"\r\n", b"\n")
    head = data.split(b"\n\n", 1)[0]
    if len(head) > MAX_HEADERS:
        head = head[:MAX_HEADERS].rsplit(b"\n", 1)[0]
    return head.decode("utf-8", "replace")


def failure_report_queue(
    *,
    header_from: str,
    policy: Mapping[str, str],
    record_domain: str,
    dmarc_result: str,
    spf_aligned: bool,
    dkim_aligned: bool,
    spf_domain: str,
    spf_result: str,
    dkim_results: Sequence[Mapping],
    source_ip: str | None,
    envelope_from: str,
    original: bytes,
    authentication_results: str = "",
    disposition: str = "none",
    delivery_result: str = "",
    received_at: datetime | None = None,
) -> OutgoingReport | None:
    """Queue one failure report for `header_from` if its record's ruf/fo ask for one and
    the hour's cap is not reached; None otherwise."""
    from apps.reports.outgoing import _mailto  # the rua/ruf URI list reader

    ruf, addresses = _mailto(policy.get("ruf", ""))
    limit = settings.MAILADMIN_REPORTS_RUF_PER_HOUR
    if not addresses or not original or limit <= 0:
        return None
    auth_failure = fo_trigger(
        policy.get("fo", "0"),
        dmarc_result=dmarc_result,
        spf_aligned=spf_aligned,
        dkim_aligned=dkim_aligned,
        spf_result=spf_result,
        dkim_results=dkim_results,
    )
    if auth_failure is None:
        return None
    headers = _header_block(original)
    if FEEDBACK_REPORT.search(headers):
        return None  # never a report about a report: two servers would loop
    now = timezone.now()
    sent_lately = OutgoingReport.objects.filter(
        kind=OutgoingReport.Kind.FAILURE,
        policy_domain=header_from,
        created_at__gte=now - timedelta(hours=1),
    ).count()
    if sent_lately >= limit:
        log.info("failure reports for %s: %d this hour, none more", header_from, sent_lately)
        return None
    when = received_at or now
    alignment = [n for n, ok in (("spf", spf_aligned), ("dkim", dkim_aligned)) if ok]
    details = {
        "auth_failure": auth_failure,
        "record_domain": record_domain or header_from,
        "source_ip": source_ip or "",
        "envelope_from": envelope_from,
        "arrival_date": format_datetime(when.astimezone(UTC)),
        "authentication_results": authentication_results,
        # RFC 6591 3.1: delivered, spam, policy, reject, other (what became of it)
        "delivery_result": delivery_result or DELIVERY_RESULTS.get(disposition, "delivered"),
        "identity_alignment": ",".join(alignment) or "none",
        "spf_domain": spf_domain,
        "dkim_failed": [
            {"domain": d.get("domain", ""), "selector": d.get("selector", "")}
            for d in dkim_results
            if str(d.get("result", "")).lower() == "fail"
        ],
        "headers": headers,
    }
    report = OutgoingReport.objects.create(
        kind=OutgoingReport.Kind.FAILURE,
        policy_domain=header_from,
        range_begin=when,
        range_end=when,
        report_id=f"{uuid.uuid4().hex}@{settings.MAILADMIN_HOSTNAME}",
        filename=f"{settings.MAILADMIN_HOSTNAME}!{header_from}!{int(when.timestamp())}.eml",
        rua=ruf,
        recipients=[],  # checked when sent (RFC 7489 7.1)
        payload=gzip.compress(json.dumps(details).encode(), mtime=0),
        record_count=1,
        message_count=1,
        send_after=now,
    )
    _wake_on_commit()
    return report


def _wake_on_commit() -> None:
    """Ask a reports worker to send at once rather than at the next beat."""

    def send() -> None:
        from mailadmin.celery import app

        try:
            app.send_task("reports.outgoing_send")
        except Exception:  # the beat sends it within 10 minutes; the database holds it
            log.warning("could not wake a reports worker", exc_info=True)

    transaction.on_commit(send)


def failure_details(report: OutgoingReport) -> dict:
    return json.loads(gzip.decompress(bytes(report.payload)))


def failure_recipients(resolver: dns.resolver.Resolver, report: OutgoingReport) -> list[str]:
    """The ruf addresses that accept reports about the record's domain (RFC 7489 7.1);
    raises LookupFailed when DNS does not answer."""
    from apps.reports.outgoing import _mailto, accepting_addresses

    _, addresses = _mailto(",".join(report.rua))
    source = failure_details(report)["record_domain"]
    return accepting_addresses(resolver, source, addresses)


def failure_message(report: OutgoingReport) -> bytes:
    """RFC 6591 / RFC 7489 7.3: multipart/report; report-type=feedback-report with a
    human-readable part, the message/feedback-report fields, and the original's headers."""
    details = failure_details(report)
    submitter = settings.MAILADMIN_HOSTNAME
    message = EmailMessage()
    message["From"] = settings.MAILADMIN_REPORTS_FROM
    message["To"] = ", ".join(report.recipients)
    message["Date"] = format_datetime(timezone.now().astimezone(UTC))
    message["Message-ID"] = f"<{report.report_id}>"
    message["Subject"] = f"DMARC failure report for {report.policy_domain} from {submitter}"
    message.set_content(
        f"This is a DMARC failure report from {submitter} about a message claiming to be "
        f"from {report.policy_domain}, received from {details['source_ip'] or 'an unknown'} "
        f"address. Only the message's headers are included.\n"
    )
    fields = [
        ("Feedback-Type", "auth-failure"),
        ("User-Agent", f"mailadmin ({submitter})"),
        ("Version", "1"),
        ("Auth-Failure", details["auth_failure"]),
        ("Original-Mail-From", f"<{details['envelope_from']}>"),
        ("Arrival-Date", details["arrival_date"]),
        ("Reporting-MTA", f"dns; {submitter}"),
        ("Source-IP", details["source_ip"]),
        ("Reported-Domain", report.policy_domain),
        ("Delivery-Result", details["delivery_result"]),
        ("Identity-Alignment", details["identity_alignment"]),
    ]
    if details["auth_failure"] == "dkim" and details["dkim_failed"]:
        fields += [("DKIM-Domain", details["dkim_failed"][0]["domain"])]
        if details["dkim_failed"][0]["selector"]:
            fields += [("DKIM-Selector", details["dkim_failed"][0]["selector"])]
    if details["auth_failure"] == "spf" and details["spf_domain"]:
        fields += [("SPF-DNS", f"txt : {details['spf_domain']}")]
    results = details["authentication_results"].partition(":")[2].strip()
    if results:
        fields += [("Authentication-Results", " ".join(results.split()))]
    text = "".join(f"{name}: {value}\r\n" for name, value in fields if value)
    feedback = EmailMessage()
    feedback.set_payload(text)
    feedback["Content-Type"] = "message/feedback-report"
    feedback["Content-Transfer-Encoding"] = "7bit"
    headers = EmailMessage()
    headers.set_payload(details["headers"].replace("\r\n", "\n").replace("\n", "\r\n") + "\r\n")
    headers["Content-Type"] = "text/rfc822-headers"
    headers["Content-Transfer-Encoding"] = "8bit"
    message.make_mixed()
    message.attach(feedback)
    message.attach(headers)
    message.set_type("multipart/report")
    message.set_param("report-type", "feedback-report")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
