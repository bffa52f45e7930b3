"""Delivery status notifications (RFC 3464): a multipart/report for the sender, saying which
recipients failed (or are delayed) and what the remote server answered."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, make_msgid

STATUS_IN_TEXT = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True)
class RecipientReport:
    address: str
    code: int | None
    response: str  # the remote server's reply, or our own explanation
    remote_mta: str = ""
    # The address the sender used, when it is not `address` (a list a member is on).
    original_recipient: str = ""
    status: str = ""  # an RFC 3463 code; empty: from the reply (status_code)


def status_code(code: int | None, response: str, *, failed: bool) -> str:
    """The enhanced status code (RFC 3463): the one in the reply, else one from its class."""
    found = STATUS_IN_TEXT.search(response or "")
    if found:
        return found.group(1)
    if failed:
        return "5.0.0" if (code or 500) >= 500 else "4.4.7"  # expired after 4xx answers
    return "4.0.0"


def _headers_of(original: bytes) -> bytes:
    end = original.find(b"\r\n\r\n")
    if end < 0:
        end = original.find(b"\n\n")
    head = original if end < 0 else original[:end]
    return head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n"


def build(
    *,
    hostname: str,
    to: str,
    recipients: list[RecipientReport],
    original: bytes,
    arrival: datetime,
    now: datetime,
    delayed: bool = False,
    retry_until: datetime | None = None,
) -> bytes:
    """The whole DSN message as bytes (CRLF line ends), ready to enqueue with a null sender."""
    boundary = f"dsn-{uuid.uuid4().hex}"
    action = "delayed" if delayed else "failed"
    if delayed:
        subject = "Delayed Mail (still being retried)"
        intro = (
            f"This is the mail system at host {hostname}.\r\n\r\n"
            "Your message could not be delivered yet to the recipients below. The mail system "
            "will keep trying"
            + (f" until {format_datetime(retry_until)}" if retry_until else "")
            + "; you do not need to send it again.\r\n"
        )
    else:
        subject = "Undelivered Mail Returned to Sender"
        intro = (
            f"This is the mail system at host {hostname}.\r\n\r\n"
            "I'm sorry to have to inform you that your message could not be delivered to "
            "one or more recipients.\r\n"
        )
    lines = [intro, "\r\n"]
    for r in recipients:
        lines.append(f"<{r.address}>: {r.response}\r\n")
    human = "".join(lines)

    fields = [
        f"Reporting-MTA: dns; {hostname}",
        f"Arrival-Date: {format_datetime(arrival)}",
        "",
    ]
    for r in recipients:
        fields += [
            f"Final-Recipient: rfc822; {r.address}",
            f"Original-Recipient: rfc822; {r.original_recipient or r.address}",
            f"Action: {action}",
            f"Status: {r.status or status_code(r.code, r.response, failed=not delayed)}",
        ]
        if r.remote_mta:
            fields.append(f"Remote-MTA: dns; {r.remote_mta}")
        if r.code:
            fields.append(f"Diagnostic-Code: smtp; {r.response}")
        else:
            fields.append(f"Diagnostic-Code: x-mailadmin; {r.response}")
        fields.append(f"Last-Attempt-Date: {format_datetime(now)}")
        if delayed and retry_until:
            fields.append(f"Will-Retry-Until: {format_datetime(retry_until)}")
        fields.append("")
    status_part = "\r\n".join(fields)

    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>",
        f"To: <{to}>",
        f"Subject: {subject}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: {make_msgid(domain=hostname)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=utf-8",
        "",
        human,
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        status_part,
        f"--{boundary}",
        "Content-Description: Undelivered Message Headers",
        "Content-Type: text/rfc822-headers",
        "",
    ]
    text = "\r\n".join(head).encode()
    return text + b"\r\n" + _headers_of(original) + f"\r\n--{boundary}--\r\n".encode()
