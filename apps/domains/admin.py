"""Operators' view of domain profiles and DKIM keys; private keys are never shown.

DKIM keys are switched on or off and deleted through the domain services (audited with
interface "admin"); they are made only by the service, which generates the pair. Domain
profiles are written by the DNS check alone.
"""

from __future__ import annotations

from django.contrib import admin

from apps.domains.models import DkimKey, DomainProfile
from apps.domains.services import dkim_key_delete, dkim_key_set_active
from mailadmin.admin_base import ReadOnlyAdmin, ServiceAdmin


@admin.register(DomainProfile)
class DomainProfileAdmin(ReadOnlyAdmin):
    list_display = ("domain", "tenant", "dns_status", "dns_checked_at", "verified_at")
    list_filter = ("dns_status",)
    search_fields = ("^domain__name",)
    search_help_text = "The beginning of the domain name."
    list_select_related = ("domain", "tenant")
    sortable_by = ()


@admin.register(DkimKey)
class DkimKeyAdmin(ServiceAdmin):
    list_display = ("selector", "domain", "tenant", "algorithm", "is_active", "created_at")
    list_filter = ("algorithm", "is_active")
    search_fields = ("^domain__name",)
    search_help_text = "The beginning of the domain name."
    list_select_related = ("domain", "tenant")
    ordering = ("-id",)
    sortable_by = ()
    fields = ("domain", "tenant", "selector", "algorithm", "public_key", "is_active", "created_at")
    readonly_fields = ("domain", "tenant", "selector", "algorithm", "public_key", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def save_model(self, request, obj: DkimKey, form, change: bool) -> None:
        current = DkimKey.objects.select_related("domain").get(pk=obj.pk)
        dkim_key_set_active(
            actor=request.user, key=current, is_active=form.cleaned_data["is_active"]
        )

    def delete_model(self, request, obj: DkimKey) -> None:
        dkim_key_delete(actor=request.user, key=obj)
