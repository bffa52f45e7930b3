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
    <selector>._domainkey.<domain>."""

    class Algorithm(models.TextChoices):
        RSA = "rsa", "RSA-SHA256 (2048 bits)"
        ED25519 = "ed25519", "Ed25519-SHA256"

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
        editable=False, help_text="PEM (PKCS#8), sealed at rest; never shown or returned."
    )
    public_key = models.TextField(help_text="The p= value of the DNS record (base64).")
    is_active = models.BooleanField(default=True, help_text="Used for signing.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "DKIM key"
        verbose_name_plural = "DKIM keys"
        ordering = ["domain_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "selector"], name="dkim_selector_unique")
        ]
        indexes = [models.Index(fields=["tenant", "domain"])]

    def __str__(self) -> str:
        return f"{self.selector} ({self.algorithm})"


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
