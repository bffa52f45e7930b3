"""Operators' view of domain profiles and DKIM keys; private keys are never shown.

DKIM keys are retired and deleted through the domain services (audited with interface
"admin"); they are made only by the service, which generates the pair, and move through
their life cycle by the rotation task. Domain
profiles are written by the DNS check alone.
"""

from __future__ import annotations

from django.contrib import admin, messages

from apps.accounts.names import name_starts_with
from apps.domains.models import CatchAll, DkimKey, DomainAlias, DomainProfile, MailboxProfile
from apps.domains.services import dkim_key_delete, dkim_key_retire
from mailadmin.admin_base import ReadOnlyAdmin, ServiceAdmin
from mailadmin.errors import ServiceError


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
    list_display = ("selector", "domain", "tenant", "algorithm", "state", "created_at")
    list_filter = ("algorithm", "state")
    list_select_related = ("domain", "tenant")
    ordering = ("-id",)
    sortable_by = ()
    fields = (
        "domain",
        "tenant",
        "selector",
        "algorithm",
        "public_key",
        "state",
        "state_changed_at",
        "created_at",
    )
    readonly_fields = fields
    actions = ["retire_keys"]

    @admin.action(description="Retire the selected DKIM keys")
    def retire_keys(self, request, queryset) -> None:
        """Through the service: an active key stops signing (published for the grace
        period), a pending one is withdrawn at once."""
        for key in queryset.select_related("domain"):
            try:
                dkim_key_retire(actor=request.user, key=key)
            except ServiceError as exc:
                self.message_user(request, f"{key}: {exc.message}", messages.WARNING)

    def has_add_permission(self, request) -> bool:
        return False

    def save_model(self, request, obj: DkimKey, form, change: bool) -> None:
        """Every field is read-only: the life cycle moves through the domain page and the
        rotation task."""

    def delete_model(self, request, obj: DkimKey) -> None:
        dkim_key_delete(actor=request.user, key=obj)


# Mailboxes, aliases and catch-alls are written by apps.domains.mailbox_services (the
# console's domain page and the provisioning API): read-only here.


@admin.register(MailboxProfile)
class MailboxProfileAdmin(DomainNameSearch, ReadOnlyAdmin):
    list_display = ("name", "domain", "tenant", "display_name", "is_hidden")
    list_select_related = ("domain", "tenant")
    sortable_by = ()


@admin.register(DomainAlias)
class DomainAliasAdmin(DomainNameSearch, ReadOnlyAdmin):
    list_display = ("alias", "domain", "tenant", "created_at")
    list_select_related = ("domain", "tenant")
    sortable_by = ()


@admin.register(CatchAll)
class CatchAllAdmin(DomainNameSearch, ReadOnlyAdmin):
    list_display = ("domain", "target", "tenant", "created_at")
    list_select_related = ("domain", "target", "tenant")
    sortable_by = ()
