"""What a domain needs beyond its principal row: DKIM keys and the state of its DNS.

A domain is a Principal of type "domain" (as in the management API); these models hang
off that row and carry its tenant, so every query here is scoped the same way.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from mailadmin.sealing import SealedTextField


def _verification_token() -> str:
    return secrets.token_hex(16)


class DomainProfile(models.Model):
    """One per domain: its ownership token and the outcome of the latest DNS check."""

    class Status(models.TextChoices):
        UNKNOWN = "unknown", "Not checked yet"
        OK = "ok", "All records found"
        PARTIAL = "partial", "Some records missing or wrong"
        FAILING = "failing", "Required records missing or wrong"

    domain = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="domain_profile",
        limit_choices_to={"type": "domain"},
    )
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    verification_token = models.CharField(max_length=64, default=_verification_token)
    verified_at = models.DateTimeField(null=True, blank=True)
    dns_status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNKNOWN)
    dns_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "dns_status"]),
            models.Index(fields=["dns_checked_at"]),
        ]

    def __str__(self) -> str:
        return f"profile of {self.domain_id}"


class DkimKey(models.Model):
    """A DKIM signing key of a domain; the public half is published at
    <selector>._domainkey.<domain>.

    Life cycle (apps.domains.services, driven by the `domains.dkim_rotation` task):
    pending (published, not signing) -> active (signing, once DNS showed its record) ->
    retiring (still published so mail already signed verifies, not signing) -> retired
    (record withdrawn, private key destroyed). At most one active key per domain and
    algorithm.
    """

    class Algorithm(models.TextChoices):
        RSA = "rsa", "RSA-SHA256 (2048 bits)"
        ED25519 = "ed25519", "Ed25519-SHA256"

    class State(models.TextChoices):
        PENDING = "pending", "Pending (waiting for its DNS record)"
        ACTIVE = "active", "Active (signing)"
        RETIRING = "retiring", "Retiring (published, not signing)"
        RETIRED = "retired", "Retired (withdrawn)"

    # The states whose record is in DNS (the records list and the zone file show them).
    PUBLISHED = (State.PENDING, State.ACTIVE, State.RETIRING)

    domain = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="dkim_keys",
        limit_choices_to={"type": "domain"},
    )
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    selector = models.CharField(max_length=63)
    algorithm = models.CharField(max_length=16, choices=Algorithm.choices)
    private_key = SealedTextField(
        editable=False,
        help_text="PEM (PKCS#8), sealed at rest; never shown or returned; empty once retired.",
    )
    public_key = models.TextField(help_text="The p= value of the DNS record (base64).")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    state_changed_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "DKIM key"
        verbose_name_plural = "DKIM keys"
        ordering = ["domain_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "selector"], name="dkim_selector_unique"),
            models.UniqueConstraint(
                fields=["domain", "algorithm"],
                condition=models.Q(state="active"),
                name="dkim_one_signing_key",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "domain"]),
            models.Index(fields=["state", "state_changed_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.selector} ({self.algorithm}, {self.state})"

    @property
    def is_active(self) -> bool:
        """Signs mail (the API's `active`)."""
        return self.state == self.State.ACTIVE

    @property
    def is_published(self) -> bool:
        return self.state in self.PUBLISHED


class DnsCheckResult(models.Model):
    """What the latest check found for one expected record of a domain."""

    class Status(models.TextChoices):
        OK = "ok", "Found"
        MISSING = "missing", "Missing"
        MISMATCH = "mismatch", "Different value"
        ERROR = "error", "Lookup failed"

    domain = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dns_results"
    )
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    record_type = models.CharField(max_length=8)
    name = models.CharField(max_length=255)
    expected = models.TextField()
    found = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices)
    required = models.BooleanField(default=True)
    detail = models.CharField(max_length=512, blank=True, default="")
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "DNS check result"
        ordering = ["domain_id", "id"]
        indexes = [models.Index(fields=["tenant", "domain"])]

    def __str__(self) -> str:
        return f"{self.record_type} {self.name}: {self.status}"
