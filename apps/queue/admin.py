"""Operators' read-only view of fetch jobs and their monitoring entries (the console and
the API change them, through apps.queue.fetch_services). The password is never shown."""

from __future__ import annotations

from django.contrib import admin

from apps.queue.models import FetchEntry, FetchJob
from mailadmin.admin_base import ReadOnlyAdmin


@admin.register(FetchJob)
class FetchJobAdmin(ReadOnlyAdmin):
    list_display = (
        "mailbox_address",
        "protocol",
        "host",
        "username",
        "active",
        "last_status",
        "last_run_at",
        "next_run_at",
    )
    list_select_related = ("mailbox", "tenant")
    list_filter = ("protocol", "active", "last_status")
    search_fields = ("mailbox_address", "host")
    raw_id_fields = ("mailbox", "tenant")
    exclude = ("password",)
    ordering = ("-id",)
    sortable_by = ()


@admin.register(FetchEntry)
class FetchEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "job", "status", "subject", "size", "reason")
    list_select_related = ("job",)
    list_filter = ("status",)
    raw_id_fields = ("job", "tenant")
    ordering = ("-id",)
    sortable_by = ()
