"""Operators' read-only view of folders and stored messages (delivery writes them)."""

from __future__ import annotations

from django.contrib import admin

from apps.store.models import DeletedMessage, Folder, Message
from mailadmin.admin_base import ReadOnlyAdmin


@admin.register(Folder)
class FolderAdmin(ReadOnlyAdmin):
    list_display = ("name", "principal", "special_use", "uidvalidity", "uidnext")
    list_select_related = ("principal",)
    raw_id_fields = ("principal",)
    ordering = ("-id",)
    sortable_by = ()


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("uid", "folder", "principal", "from_address", "subject", "size", "received_at")
    list_select_related = ("folder", "principal")
    raw_id_fields = ("folder", "principal")
    ordering = ("-id",)
    sortable_by = ()


@admin.register(DeletedMessage)
class DeletedMessageAdmin(ReadOnlyAdmin):
    """Expunged messages kept for undelete (the account purge deletes them for good)."""

    list_display = ("principal", "folder_name", "from_address", "subject", "size", "deleted_at")
    list_select_related = ("principal",)
    raw_id_fields = ("principal", "folder")
    ordering = ("-id",)
    sortable_by = ()
