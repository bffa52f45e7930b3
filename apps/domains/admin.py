"""Operators' view of domain profiles and DKIM keys; private keys are never shown."""

from __future__ import annotations

from django.contrib import admin

from apps.domains.models import DkimKey, DomainProfile


@admin.register(DomainProfile)
class DomainProfileAdmin(admin.ModelAdmin):
    list_display = ("domain", "tenant", "dns_status", "dns_checked_at", "verified_at")
    list_filter = ("dns_status",)
    search_fields = ("domain__name",)
    list_select_related = ("domain", "tenant")
    raw_id_fields = ("domain", "tenant")
    readonly_fields = ("verification_token", "dns_checked_at", "created_at")


@admin.register(DkimKey)
class DkimKeyAdmin(admin.ModelAdmin):
    """Keys are made by the service (which generates the pair); here they are read and
    switched on or off."""

    list_display = ("selector", "domain", "tenant", "algorithm", "is_active", "created_at")
    list_filter = ("algorithm", "is_active")
    search_fields = ("selector", "domain__name")
    list_select_related = ("domain", "tenant")
    exclude = ("private_key",)
    readonly_fields = ("domain", "tenant", "selector", "algorithm", "public_key", "created_at")

    def has_add_permission(self, request) -> bool:
        return False
