"""The outbound queue: the database is the source of truth, the broker only wakes workers.

A QueuedMessage is what was accepted (return path, size, the blob holding its bytes). It
has one QueueDomain per destination domain, which carries the delivery schedule and the
claim a worker holds while delivering, and one QueueRecipient per recipient with its own
status and the last answer of the remote server.

    scheduled ──claim──► (leased) ──► delivered | failed | scheduled (retry) | cancelled
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone


class Status(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINAL = (Status.DELIVERED, Status.FAILED, Status.CANCELLED)


class QueuedMessage(models.Model):
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "" is the null return path (<>): DSNs and other bounces, which get no DSN themselves.
    return_path = models.CharField(max_length=320, blank=True, default="")
    created = models.DateTimeField(default=timezone.now)
    size = models.PositiveIntegerField()
    blob_hash = models.CharField(max_length=64)
    subject = models.CharField(max_length=255, blank=True, default="")
    domain_count = models.PositiveIntegerField(default=1)
    # scheduled while any domain is; then the worst outcome (failed > cancelled > delivered)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["tenant", "status", "-created"]),
            models.Index(fields=["status", "-created"]),
            models.Index(fields=["-created", "-id"]),
            # the sender filter matches case-insensitively (iexact is UPPER(x) = UPPER(y))
            models.Index(Upper("return_path"), name="queue_message_sender_upper"),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} from <{self.return_path}>"


class QueueDomain(models.Model):
    message = models.ForeignKey(QueuedMessage, on_delete=models.CASCADE, related_name="domains")
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    retry_num = models.PositiveIntegerField(default=0)
    next_retry = models.DateTimeField(default=timezone.now)
    next_notify = models.DateTimeField(null=True, blank=True)
    expires = models.DateTimeField()
    # The lease of the worker delivering it: claimed by a conditional UPDATE; a worker
    # that dies lets the lease lapse and the sweep hands the entry to another.
    claim_id = models.UUIDField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    tls = models.BooleanField(null=True, blank=True, help_text="Whether the last try used TLS.")
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            # the due scan: scheduled entries by next_retry
            models.Index(fields=["status", "next_retry"]),
            models.Index(fields=["status", "next_notify"]),
            # the sweep: entries of dead workers (lapsed leases)
            models.Index(fields=["status", "lease_expires_at"]),
            models.Index(fields=["name", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class QueueRecipient(models.Model):
    message = models.ForeignKey(QueuedMessage, on_delete=models.CASCADE, related_name="recipients")
    domain = models.ForeignKey(QueueDomain, on_delete=models.CASCADE, related_name="recipients")
    address = models.CharField(max_length=320)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.TextField(blank=True, default="")
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(Upper("address"), name="queue_recipient_address_upper"),
            models.Index(fields=["domain", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.status})"


class QueueControl(models.Model):
    """One row: whether workers start deliveries (stop/start from the API and console)."""

    running = models.BooleanField(default=True)
    changed = models.DateTimeField(default=timezone.now)
    changed_by = models.CharField(max_length=255, blank=True, default="")

    def __str__(self) -> str:
        return "running" if self.running else "stopped"


class QueueSample(models.Model):
    """Queue size at a moment (the sweep records one a minute) for the console's chart."""

    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    at = models.DateTimeField()
    size = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["tenant", "at"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.size} at {self.at:%Y-%m-%d %H:%M}"


class StsPolicyCache(models.Model):
    """The MTA-STS policy (RFC 8461) last fetched for a destination domain, kept until its
    max_age runs out (5.1): a policy must survive an attacker who strips the TXT record or
    blocks the HTTPS fetch, so it is in the database, shared by every worker."""

    domain = models.CharField(max_length=255, unique=True)
    policy_id = models.CharField(max_length=32)
    mode = models.CharField(max_length=8)
    mx = models.JSONField(default=list)
    max_age = models.PositiveIntegerField()
    text = models.TextField()
    fetched = models.DateTimeField()
    expires = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.domain}: {self.mode} (id {self.policy_id})"
