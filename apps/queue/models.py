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

from mailadmin.sealing import SealedTextField


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
            # the blob purge and blob visibility ask whether a queued message holds a blob
            models.Index(fields=["blob_hash"], name="queue_message_blob_idx"),
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


# --- fetch jobs: mail fetched from remote mailboxes (IMAP, POP3) -------------------------


class FetchJob(models.Model):
    """A remote mailbox whose mail is fetched on a schedule into a local mailbox, through
    the same inbound pipeline as the MX (apps.queue.fetch). The API names it by `uuid`.

    One run at a time: a run claims the job by a conditional UPDATE of `claim_id` (free, or
    its lease lapsed), so neither beat nor "Fetch now" can start a second one.
    """

    class Protocol(models.TextChoices):
        IMAP = "imap", "IMAP"
        POP3 = "pop3", "POP3"

    class Security(models.TextChoices):
        SSL = "ssl", "Implicit TLS"
        STARTTLS = "starttls", "STARTTLS"
        NONE = "none", "None (loopback hosts only)"

    class LastStatus(models.TextChoices):
        NEVER = "never", "Not run yet"
        SUCCESS = "success", "Success"
        PARTIAL = "partial", "Some messages failed"
        ERROR = "error", "Error"

    uuid = models.UUIDField(unique=True, editable=False)
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The local mailbox (an individual) that receives the mail, and the address it was
    # named by (the spec's `mailbox`).
    mailbox = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fetch_jobs"
    )
    mailbox_address = models.CharField(max_length=320)
    active = models.BooleanField(default=True)
    protocol = models.CharField(max_length=8, choices=Protocol.choices)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    security = models.CharField(max_length=8, choices=Security.choices, default=Security.SSL)
    username = models.CharField(max_length=320)
    # Sealed with MAILADMIN_SECRETS_KEY (the server must send it); never shown or returned.
    password = SealedTextField(editable=False)
    folders = models.JSONField(default=list, blank=True)  # IMAP folders; POP3: none
    delete_on_server = models.BooleanField(default=False)
    interval_minutes = models.PositiveIntegerField(default=15)
    next_run_at = models.DateTimeField(default=timezone.now)
    # The run holding the job (see the class docstring).
    claim_id = models.UUIDField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(
        max_length=8, choices=LastStatus.choices, default=LastStatus.NEVER
    )
    last_error = models.TextField(blank=True, default="")
    last_fetched = models.PositiveIntegerField(default=0)
    last_failed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"]),
            models.Index(fields=["-created_at", "-id"]),
            models.Index(fields=["active", "next_run_at"]),  # the due scan
        ]

    def __str__(self) -> str:
        return f"{self.protocol}://{self.username}@{self.host}:{self.port} → {self.mailbox_address}"


class FetchSeen(models.Model):
    """A remote message a job has dealt with (stored, or failed for good): IMAP by folder,
    UIDVALIDITY and UID, POP3 by UIDL (folder "", uidvalidity 0). Nothing is fetched twice;
    rows of messages gone from the server are dropped by the next run."""

    job = models.ForeignKey(FetchJob, on_delete=models.CASCADE, related_name="seen")
    folder = models.CharField(max_length=255, blank=True, default="")
    uidvalidity = models.PositiveBigIntegerField(default=0)
    uid = models.CharField(max_length=255)
    # Stored here (deleted on the server when the job says so), or failed for good (left).
    stored = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "folder", "uidvalidity", "uid"], name="queue_fetch_seen_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.folder or 'POP3'} {self.uidvalidity}/{self.uid}"


class FetchEntry(models.Model):
    """Monitoring: one processed remote message, stored or failed, and why."""

    class Status(models.TextChoices):
        SUCCESS = "success", "Stored"
        FAILED = "failed", "Failed"

    job = models.ForeignKey(FetchJob, on_delete=models.CASCADE, related_name="entries")
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices)
    # Success: where it went (INBOX, Junk, the quarantine, discarded); failure: why.
    reason = models.TextField(blank=True, default="")
    remote_folder = models.CharField(max_length=255, blank=True, default="")
    remote_id = models.CharField(max_length=255, blank=True, default="")  # UID or UIDL
    message_id = models.CharField(max_length=998, blank=True, default="")
    subject = models.CharField(max_length=998, blank=True, default="")
    sender = models.CharField(max_length=320, blank=True, default="")
    size = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "fetch entries"
        indexes = [
            models.Index(fields=["tenant", "status", "-created_at", "-id"]),
            models.Index(fields=["status", "-created_at", "-id"]),
            models.Index(fields=["job", "status", "-created_at", "-id"]),
        ]

    def __str__(self) -> str:
        return f"{self.status}: {self.subject[:60]}"
