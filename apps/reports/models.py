"""Incoming reports: DMARC aggregate and failure, TLS-RPT and ARF, and the files that failed.

A report belongs to a tenant and, when the report names one of that tenant's domains, to
that domain (a Principal of type domain). Reports a superadmin uploads for a domain this
server does not host have neither (only superadmins see them). Every row carries its
tenant so mailadmin.tenancy.scope applies unchanged.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Source(models.TextChoices):
    UPLOAD = "upload", "Console upload"
    API = "api", "API upload"
    SMTP = "smtp", "Mail"


class Report(models.Model):
    """What every report has: who sent it, about which domain, for which period."""

    class Kind(models.TextChoices):
        DMARC = "dmarc", "DMARC aggregate"
        DMARC_FAILURE = "dmarc-failure", "DMARC failure"
        ARF = "arf", "ARF feedback"
        TLS = "tls", "TLS-RPT"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    domain = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.CASCADE,
        related_name="incoming_reports",
        limit_choices_to={"type": "domain"},
    )
    domain_name = models.CharField(
        max_length=255, blank=True, default="", help_text="The domain as the report names it."
    )
    reporter = models.CharField(max_length=255, blank=True, default="")
    reporter_email = models.CharField(max_length=320, blank=True, default="")
    report_id = models.CharField(max_length=255)
    date_begin = models.DateTimeField(null=True, blank=True)
    date_end = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=8, choices=Source.choices)
    filename = models.CharField(max_length=255, blank=True, default="")
    # sha256 of kind, tenant, reporter and report id: the same report is stored once.
    dedupe_key = models.CharField(max_length=64, unique=True)
    record_count = models.PositiveIntegerField(default=0)
    # Messages (DMARC) or sessions (TLS) in all, and how many passed / failed.
    message_count = models.BigIntegerField(default=0)
    pass_count = models.BigIntegerField(default=0)
    fail_count = models.BigIntegerField(default=0)
    # DMARC: policy_published; TLS: contact-info; feedback: the fields and original headers.
    policy = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-date_begin", "-id"]
        indexes = [
            models.Index(fields=["tenant", "kind", "-date_begin", "-id"]),
            models.Index(fields=["kind", "-date_begin", "-id"]),
            models.Index(fields=["domain", "kind", "-date_begin"]),
            models.Index(fields=["received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.reporter} {self.report_id}"


class DmarcRecord(models.Model):
    """One row of an aggregate report: messages from one source with one outcome."""

    # No index of its own: the (report, source_ip) index below serves every look-up by
    # report (its first column), and one index less is one B-tree insert less per record.
    report = models.ForeignKey(
        Report, on_delete=models.CASCADE, related_name="dmarc_records", db_index=False
    )
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    count = models.BigIntegerField(default=0)
    disposition = models.CharField(max_length=32, blank=True, default="")
    dkim = models.CharField(max_length=32, blank=True, default="")
    spf = models.CharField(max_length=32, blank=True, default="")
    dmarc_pass = models.BooleanField(default=False)
    header_from = models.CharField(max_length=255, blank=True, default="")
    envelope_from = models.CharField(max_length=255, blank=True, default="")
    envelope_to = models.CharField(max_length=255, blank=True, default="")
    reasons = models.JSONField(default=list, blank=True)
    dkim_results = models.JSONField(default=list, blank=True)
    spf_results = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["report_id", "id"]
        indexes = [models.Index(fields=["report", "source_ip"])]

    def __str__(self) -> str:
        return f"{self.source_ip} x{self.count}"


class TlsPolicyResult(models.Model):
    """One policy of a TLS report: sessions that succeeded and failed, and why."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="tls_policies")
    policy_type = models.CharField(max_length=32, blank=True, default="")
    policy_domain = models.CharField(max_length=255, blank=True, default="")
    policy_string = models.JSONField(default=list, blank=True)
    mx_host = models.JSONField(default=list, blank=True)
    successful = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    failure_details = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["report_id", "id"]

    def __str__(self) -> str:
        return f"{self.policy_type} {self.policy_domain}"


class IngestFailure(models.Model):
    """A file we could not read: kept raw, with the reason, for someone to look at."""

    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    filename = models.CharField(max_length=255, blank=True, default="")
    reason = models.CharField(max_length=1024)
    size = models.BigIntegerField(default=0)
    raw = models.BinaryField(help_text="The file as received (up to the upload size cap).")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-received_at", "-id"]),
            models.Index(fields=["received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.filename}: {self.reason}"


class PendingUpload(models.Model):
    """A file of a large upload waiting for the worker that ingests it (then deleted)."""

    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    domain = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    filename = models.CharField(max_length=255)
    data = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.filename


class SourceName(models.Model):
    """The PTR name of a sending source seen in DMARC reports: resolved by a worker
    (reports.resolve_sources), never during a request, and kept here for the dashboard.
    Not per tenant: a reverse DNS name is public and the same for everyone; who may see a
    source is decided by the reports that name it."""

    class Status(models.TextChoices):
        OK = "ok", "Resolved"
        NONE = "none", "No PTR record"
        ERROR = "error", "Lookup failed"

    ip = models.GenericIPAddressField(unique=True)
    name = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=8, choices=Status.choices)
    resolved_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["resolved_at"])]

    def __str__(self) -> str:
        return f"{self.ip} {self.name or self.status}"


# --- our own outgoing reports ------------------------------------------------------------


class InboundAuthResult(models.Model):
    """What our checks found for one received message, per header-from domain: the rows
    our daily DMARC aggregate reports (RFC 7489) to the senders' rua are built from.
    Server-wide (a sender's report covers mail to every tenant), so no tenant."""

    received_at = models.DateTimeField(default=timezone.now)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    envelope_from = models.CharField(max_length=255, blank=True, default="")  # its domain
    header_from = models.CharField(max_length=255)  # the policy domain, lower case
    spf_domain = models.CharField(max_length=255, blank=True, default="")
    spf_scope = models.CharField(max_length=8, blank=True, default="mfrom")
    spf_result = models.CharField(max_length=16, blank=True, default="none")
    dkim_results = models.JSONField(default=list, blank=True)  # [{domain, selector, result}]
    dkim_aligned = models.CharField(max_length=8, default="fail")  # pass | fail
    spf_aligned = models.CharField(max_length=8, default="fail")
    dmarc_result = models.CharField(max_length=8, default="none")  # pass | fail | none
    disposition = models.CharField(max_length=16, default="none")  # none|quarantine|reject
    reasons = models.JSONField(default=list, blank=True)  # [{type, comment}]

    class Meta:
        indexes = [models.Index(fields=["received_at", "header_from"])]

    def __str__(self) -> str:
        return f"{self.header_from} from {self.source_ip}: {self.dmarc_result}"


class OutboundTlsResult(models.Model):
    """One outbound delivery attempt's TLS outcome: the rows of our TLS-RPT reports
    (RFC 8460) to the recipient domains' _smtp._tls rua."""

    attempted_at = models.DateTimeField(default=timezone.now)
    recipient_domain = models.CharField(max_length=255)  # the policy domain, lower case
    mx_host = models.CharField(max_length=255, blank=True, default="")
    policy_type = models.CharField(max_length=16, default="no-policy-found")  # sts|tlsa|...
    policy_string = models.JSONField(default=list, blank=True)
    success = models.BooleanField()
    # RFC 8460 4.3 result types: starttls-not-supported, certificate-host-mismatch, ...
    result_type = models.CharField(max_length=64, blank=True, default="")
    sending_ip = models.GenericIPAddressField(null=True, blank=True)
    receiving_ip = models.GenericIPAddressField(null=True, blank=True)
    failure_reason = models.CharField(max_length=255, blank=True, default="")
    additional_info = models.CharField(max_length=1024, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["attempted_at", "recipient_domain"])]

    def __str__(self) -> str:
        return f"{self.recipient_domain} {self.mx_host}: {self.result_type or 'success'}"


class OutgoingReport(models.Model):
    """A report we built and queue for the outbound queue (GET /api/queue/reports).
    Server-wide: only superadmins (who manage the queue) see them."""

    class Kind(models.TextChoices):
        DMARC = "dmarc", "DMARC aggregate"
        TLS = "tls", "TLS-RPT"
        FAILURE = "failure", "DMARC failure"  # one per failing message (RFC 6591)

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"  # waiting for its send time (cancellable)
        SENDING = "sending", "Being sent (HTTPS endpoints retried)"
        SENT = "sent", "Handed to the outbound queue"
        FAILED = "failed", "Could not be queued"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    policy_domain = models.CharField(max_length=255)
    range_begin = models.DateTimeField()
    range_end = models.DateTimeField()
    report_id = models.CharField(max_length=255)
    filename = models.CharField(max_length=255)
    rua = models.JSONField(default=list)  # the URIs as published
    recipients = models.JSONField(default=list)  # the mailto: addresses we send to
    # TLS-RPT https: endpoints (RFC 8460 3) we POST to, and each one's delivery state:
    # [{"uri", "status": pending|sent|failed, "attempts", "http_status", "error",
    #   "next_attempt_at", "sent_at"}]
    endpoints = models.JSONField(default=list, blank=True)
    deliveries = models.JSONField(default=list, blank=True)
    payload = models.BinaryField()  # the gzip file as attached
    record_count = models.PositiveIntegerField(default=0)
    message_count = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.CharField(max_length=1024, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    send_after = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    queued_message_id = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "policy_domain", "range_begin"],
                condition=models.Q(kind__in=["dmarc", "tls"]),
                name="reports_outgoing_once",
            )
        ]
        indexes = [
            models.Index(fields=["status", "send_after"]),
            models.Index(fields=["kind", "policy_domain", "created_at"]),  # ruf hourly cap
            models.Index(fields=["-created_at", "-id"], name="reports_outgoing_list"),
        ]

    def __str__(self) -> str:
        return self.filename
