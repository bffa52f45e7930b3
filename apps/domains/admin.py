"""Operators' view of domain profiles and DKIM keys; private keys are never shown.

DKIM keys are switched on or off and deleted through the domain services (audited with
interface "admin"); they are made only by the service, which generates the pair. Domain
profiles are written by the DNS check alone.
"""

from __future__ import annotations

from django.contrib import admin

from apps.accounts.names import name_starts_with
from apps.domains.models import DkimKey, DomainProfile
from apps.domains.services import dkim_key_delete, dkim_key_set_active
from mailadmin.admin_base import ReadOnlyAdmin, ServiceAdmin


class DomainNameSearch:
    """Search by the beginning of the domain's name, through the name's prefix index."""

    search_fields = ("^domain__name",)  # see get_search_results
    search_help_text = "The beginning of the domain name."

    def get_search_results(self, request, queryset, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return name_starts_with(queryset, term, field="domain__name"), False


@admin.register(DomainProfile)
class DomainProfileAdmin(DomainNameSearch, ReadOnlyAdmin):
    list_display = ("domain", "tenant", "dns_status", "dns_checked_at", "verified_at")
    list_filter = ("dns_status",)
    list_select_related = ("domain", "tenant")
    sortable_by = ()


@admin.register(DkimKey)
class DkimKeyAdmin(DomainNameSearch, ServiceAdmin):
    list_display = ("selector", "domain", "tenant", "algorithm", "is_active", "created_at")
    list_filter = ("algorithm", "is_active")
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
