"""Bayes models kept in the database when there is no Redis (apps.spamfilter.bayes)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class BayesModel(models.Model):
    """How many spam and ham messages one model (global, or an account's) has learned."""

    scope = models.CharField(max_length=64, unique=True)  # "global" or "account:<id>"
    spam_learned = models.PositiveIntegerField(default=0)
    ham_learned = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.scope}: {self.spam_learned} spam, {self.ham_learned} ham"


class BayesToken(models.Model):
    """One token's counts in one model; the token is a 64-bit hash of its text."""

    scope = models.CharField(max_length=64)
    token = models.BigIntegerField()
    spam = models.PositiveIntegerField(default=0)
    ham = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "token"], name="spamfilter_token_per_scope")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.token}: {self.spam}/{self.ham}"


class SenderListEntry(models.Model):
    """One entry of a mailbox's block or safe list (mailbox-provisioning-api.txt "Spam"):
    an address (`anyone@spam.com`), a domain (`spam.com`, its subdomains too) or, on the IP
    lists, an address or CIDR network (`216.12.34.1`, `2001:db8::/32`). Stored normalised:
    addresses and domains lower-case (IDNs as punycode), networks in their canonical text."""

    BLOCK = "blacklist"
    BLOCK_IP = "ipblacklist"
    SAFE = "safelist"
    SAFE_IP = "ipsafelist"
    LISTS = [(BLOCK, "Block list"), (BLOCK_IP, "IP block list"), (SAFE, "Safe list"),
             (SAFE_IP, "IP safe list")]  # fmt: skip

    mailbox = models.ForeignKey(
        "accounts.Principal", on_delete=models.CASCADE, related_name="sender_list_entries"
    )
    tenant = models.ForeignKey(
        "accounts.Principal", null=True, on_delete=models.CASCADE, related_name="+"
    )
    list = models.CharField(max_length=16, choices=LISTS)
    value = models.CharField(max_length=320)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "list", "value"], name="spamfilter_sender_list_entry_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.value} on the {self.list} of mailbox {self.mailbox_id}"


class MailboxSpamSetting(models.Model):
    """A mailbox's spam settings (mailbox-provisioning-api.txt "Edit Spam Setting"); a
    mailbox without a row has the defaults (filter on, its own quarantine, no owner)."""

    ON, OFF, EXCLUSIVE = "on", "off", "exclusive"
    LEVELS = [(ON, "On"), (OFF, "Off"), (EXCLUSIVE, "Exclusive: safe-listed senders only")]

    mailbox = models.OneToOneField(
        "accounts.Principal", on_delete=models.CASCADE, related_name="spam_setting"
    )
    tenant = models.ForeignKey(
        "accounts.Principal", null=True, on_delete=models.CASCADE, related_name="+"
    )
    filter_level = models.CharField(max_length=16, choices=LEVELS, default=ON)
    send_to_domain_quarantine = models.BooleanField(default=False)
    quarantine_owner = models.CharField(max_length=320, blank=True, default="")

    def __str__(self) -> str:
        return f"spam filter {self.filter_level} for mailbox {self.mailbox_id}"


class QuarantinedMessage(models.Model):
    """One recipient's copy of a message the filter quarantined (its action "quarantine"):
    held out of the mailbox until an administrator releases it to the INBOX or deletes it,
    or the retention purge drops it. The bytes (with the filter's headers) are a blob of
    the store (apps.store.blobs), like a stored message's.

    `kind` says whose quarantine it is in: the mailbox's own (its digest goes to the
    mailbox's address), or its domain's when the mailbox's spam settings say
    `sendtodomainquarantine` (the digest goes to `quarantineowner`). `owner` is that
    digest address, set when the copy arrives; a domain quarantine's item not yet digested
    follows a change of `quarantineowner` (sender_lists.setting_update)."""

    MAILBOX, DOMAIN = "mailbox", "domain"
    KINDS = [(MAILBOX, "Mailbox quarantine"), (DOMAIN, "Domain quarantine")]

    tenant = models.ForeignKey(
        "accounts.Principal", null=True, on_delete=models.CASCADE, related_name="+"
    )
    mailbox = models.ForeignKey(
        "accounts.Principal",
        on_delete=models.CASCADE,
        related_name="quarantined_messages",
        db_index=False,  # the (mailbox, ...) index below starts with it
    )
    kind = models.CharField(max_length=8, choices=KINDS, default=MAILBOX)
    domain = models.CharField(max_length=253, blank=True, default="")
    owner = models.CharField(max_length=320, blank=True, default="")
    recipient = models.CharField(max_length=320)
    sender = models.CharField(max_length=320, blank=True, default="")  # envelope ("" bounce)
    from_address = models.CharField(max_length=320, blank=True, default="")
    subject = models.CharField(max_length=998, blank=True, default="")
    date = models.DateTimeField(null=True, blank=True)  # the Date header
    message_id = models.CharField(max_length=998, blank=True, default="")
    size = models.PositiveBigIntegerField()
    blob_hash = models.CharField(max_length=64)
    score = models.FloatField(default=0.0)
    tags = models.JSONField(default=dict, blank=True)  # {TAG: score}
    reasons = models.JSONField(default=list, blank=True)  # why the action was quarantine
    peer_ip = models.CharField(max_length=45, blank=True, default="")
    queue_id = models.CharField(max_length=64, blank=True, default="")
    received_at = models.DateTimeField(default=timezone.now)
    digested_at = models.DateTimeField(null=True, blank=True)  # named in a digest

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-received_at", "-id"], name="spam_quar_list_idx"),
            models.Index(fields=["mailbox", "-received_at"], name="spam_quar_mailbox_idx"),
            models.Index(fields=["received_at"], name="spam_quar_age_idx"),
            models.Index(fields=["blob_hash"], name="spam_quar_blob_idx"),
            # The list's filters (quarantine.quarantine_list), each with an index of its
            # own; the sender's substring search has trigram indexes on PostgreSQL
            # (migration 0006).
            models.Index(fields=["recipient", "-received_at"], name="spam_quar_recipient_idx"),
            models.Index(fields=["owner", "-received_at"], name="spam_quar_owner_idx"),
            models.Index(fields=["domain", "-received_at"], name="spam_quar_domain_idx"),
            models.Index(fields=["tenant", "kind", "-received_at"], name="spam_quar_kind_idx"),
            models.Index(
                fields=["owner", "id"],
                name="spam_quar_undigested_idx",
                condition=models.Q(digested_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"quarantined for {self.recipient}: {self.subject[:80]}"
