"""The mail store: folders with IMAP UIDs, and messages whose bytes are a content-addressed
blob (apps.store.blobs). A message row holds what lists and quotas need; the bytes stay on
disk, once, however many mailboxes received them."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.accounts.models import Principal


class SpecialUse(models.TextChoices):
    """The standard folders every mailbox gets on its first delivery (RFC 6154 names)."""

    INBOX = "inbox", "Inbox"
    JUNK = "junk", "Junk"
    SENT = "sent", "Sent"
    TRASH = "trash", "Trash"


# Folder name of each standard folder, in the order the console shows them.
STANDARD_FOLDERS: dict[str, str] = {
    SpecialUse.INBOX: "INBOX",
    SpecialUse.JUNK: "Junk",
    SpecialUse.SENT: "Sent",
    SpecialUse.TRASH: "Trash",
}


class Folder(models.Model):
    """An IMAP mailbox of one individual. `uidnext` is only ever advanced by a conditional
    UPDATE in services (never from a value read into Python), so UIDs are never shared."""

    principal = models.ForeignKey(Principal, on_delete=models.CASCADE, related_name="folders")
    name = models.CharField(max_length=255)
    special_use = models.CharField(max_length=8, choices=SpecialUse.choices, blank=True)
    uidvalidity = models.PositiveBigIntegerField()
    uidnext = models.PositiveBigIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal", "name"], name="store_folder_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.principal_id}"


class Message(models.Model):
    """One copy of a message in one folder. `principal` repeats folder.principal so quota
    sums and per-mailbox lists read one table through one index."""

    # No single-column indexes on the keys: the unique (folder, uid) and the composite
    # indexes below start with them, and every index costs each delivery a write.
    folder = models.ForeignKey(
        Folder, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    principal = models.ForeignKey(
        Principal, on_delete=models.CASCADE, related_name="stored_messages", db_index=False
    )
    uid = models.PositiveBigIntegerField()
    blob_hash = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    flags = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    # Parsed from the headers for lists; empty (date: null) when missing or unreadable.
    from_name = models.CharField(max_length=255, blank=True, default="")
    from_address = models.CharField(max_length=320, blank=True, default="")
    subject = models.CharField(max_length=998, blank=True, default="")
    date = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=998, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["folder", "uid"], name="store_message_uid_unique")
        ]
        indexes = [
            models.Index(
                fields=["principal", "folder", "-received_at", "-id"],
                name="store_msg_list_idx",
            ),
            # Quota: SUM(size) per principal as an index-only scan.
            models.Index(fields=["principal", "size"], name="store_msg_quota_idx"),
            # Which messages reference a blob (blob access checks, purges).
            models.Index(fields=["blob_hash"], name="store_msg_blob_idx"),
        ]

    def __str__(self) -> str:
        return f"UID {self.uid} in folder {self.folder_id}"


class DeletedMessage(models.Model):
    """A message expunged from its folder and kept for undelete (MAILADMIN_STORE_UNDELETE_DAYS
    after `deleted_at`), then purged for good. A table of its own, not a flag on Message,
    so folder lists, quota sums and UIDs never have to skip deleted rows; its blob stays
    referenced (the blob purge keeps it) until the row goes."""

    principal = models.ForeignKey(
        Principal, on_delete=models.CASCADE, related_name="deleted_messages", db_index=False
    )
    # Where it is restored to; a folder deleted since means the INBOX.
    folder = models.ForeignKey(
        Folder, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    folder_name = models.CharField(max_length=255)
    uid = models.PositiveBigIntegerField()  # its UID when it was expunged (restore gets a new one)
    blob_hash = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    flags = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField()
    from_name = models.CharField(max_length=255, blank=True, default="")
    from_address = models.CharField(max_length=320, blank=True, default="")
    subject = models.CharField(max_length=998, blank=True, default="")
    date = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=998, blank=True, default="")
    deleted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The undelete list of one account, newest first.
            models.Index(fields=["principal", "-deleted_at", "-id"], name="store_del_list_idx"),
            # The purge of rows past the undelete window.
            models.Index(fields=["deleted_at"], name="store_del_expiry_idx"),
            # Blob references (the blob purge, undelete by hash).
            models.Index(fields=["blob_hash"], name="store_del_blob_idx"),
        ]

    def __str__(self) -> str:
        return f"deleted UID {self.uid} of {self.principal_id}"
