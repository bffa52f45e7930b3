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
    # Set for the records of one of the domain's aliases (a zone of its own); the domain's
    # check judges them too, and removing the alias takes its results with it.
    alias = models.ForeignKey(
        "DomainAlias", null=True, blank=True, on_delete=models.CASCADE, related_name="dns_results"
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


class MailboxProfile(models.Model):
    """What the provisioning API says about a mailbox beyond its principal row.

    A mailbox IS an `individual` principal: its login name and primary address are
    `<name>@<domain>`, its quota is Principal.quota (bytes), "enabled" is is_active and its
    extra addresses are PrincipalEmail rows. This row holds the directory fields
    (mailbox-provisioning-api.txt) and ties the mailbox to the domain it is listed under.
    A table of its own, so the million-row principal table is never rebuilt for them.
    """

    principal = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="mailbox_profile",
        limit_choices_to={"type": "individual"},
    )
    domain = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="mailbox_profiles",
        limit_choices_to={"type": "domain"},
    )
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    # The mailbox name of the API: the local part of the primary address, lower-case.
    name = models.CharField(max_length=64)
    display_name = models.CharField(max_length=256)
    is_hidden = models.BooleanField(default=False, help_text="Hidden from the address list.")
    is_public_folder_admin = models.BooleanField(default=False)
    first_name = models.CharField(max_length=64, blank=True, default="")
    last_name = models.CharField(max_length=64, blank=True, default="")
    company = models.CharField(max_length=128, blank=True, default="")
    department = models.CharField(max_length=128, blank=True, default="")
    job_title = models.CharField(max_length=128, blank=True, default="")
    address_line1 = models.CharField(max_length=256, blank=True, default="")
    city = models.CharField(max_length=128, blank=True, default="")
    state = models.CharField(max_length=128, blank=True, default="")
    zip = models.CharField(max_length=32, blank=True, default="")
    country = models.CharField(max_length=128, blank=True, default="")
    business_number = models.CharField(max_length=32, blank=True, default="")
    pager_number = models.CharField(max_length=32, blank=True, default="")
    home_number = models.CharField(max_length=32, blank=True, default="")
    mobile_number = models.CharField(max_length=32, blank=True, default="")
    fax_number = models.CharField(max_length=32, blank=True, default="")
    notes = models.TextField(blank=True, default="")
    forwarding_address = models.CharField(
        max_length=320, blank=True, default="", help_text="Empty: forwarding is off."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["domain_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "name"], name="mailbox_name_unique")
        ]
        indexes = [models.Index(fields=["tenant", "domain"])]

    def __str__(self) -> str:
        return self.name


class DomainAlias(models.Model):
    """Another name for a domain: mail to x@<alias> is delivered as to x@<domain>.

    `alias` is a domain name in its stored form (lower-case, punycode); it is no domain of
    its own here (no principal), and one name aliases one domain on the whole server.
    """

    alias = models.CharField(max_length=253, unique=True)
    domain = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="domain_aliases",
        limit_choices_to={"type": "domain"},
    )
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "domain aliases"
        ordering = ["alias"]
        indexes = [models.Index(fields=["tenant", "domain"])]

    def __str__(self) -> str:
        return self.alias


class CatchAll(models.Model):
    """Where mail to an address of the domain that nobody has goes (one per domain)."""

    domain = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="catch_all",
        limit_choices_to={"type": "domain"},
    )
    target = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The principal receiving the mail.",
    )
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "catch-all address"
        indexes = [models.Index(fields=["tenant"])]

    def __str__(self) -> str:
        return f"catch-all of {self.domain_id}"
