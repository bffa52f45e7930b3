"""The Django admin for operators (superadmins only).

Principals are written through the principal services, exactly as the console and the API
write them (same checks, one audit row with interface "admin"); the authentication rows
are written only by their own flows and are read-only here. Pages stay fast at a million
principals: relations are picked with autocomplete, counts are capped, searches match a
name's beginning or an exact address (see mailadmin.admin_base). Secrets and hashes are
never shown.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.models import Group
from django.db.models import Q

from apps.accounts.auth.login import throttle_clear
from apps.accounts.emails import normalize_address
from apps.accounts.models import (
    AccessToken,
    AppPassword,
    EncryptionSettings,
    LoginThrottle,
    OAuthCode,
    Principal,
    PrincipalEmail,
    PrincipalType,
    RecoveryCode,
)
from apps.accounts.names import NameKey, name_starts_with
from apps.accounts.permissions import ALL_PERMISSIONS
from apps.accounts.principals.forms import LinesField
from apps.accounts.principals.services import (
    is_builtin_role,
    principal_create,
    principal_delete,
    principal_update,
)
from mailadmin.admin_base import ReadOnlyAdmin, ServiceAdmin
from mailadmin.audit import audit
from mailadmin.errors import ServiceError

# Django's groups grant nothing here: mailadmin's roles are principals.
admin.site.unregister(Group)

# Form field -> the API field (services.principal_*) it edits.
API_FIELDS = {
    "name": "name",
    "description": "description",
    "quota": "quota",
    "max_domains": "maxDomains",
    "max_accounts": "maxAccounts",
    "max_mailboxes_per_user": "maxMailboxesPerUser",
    "emails": "emails",
    "urls": "urls",
    "external_members": "externalMembers",
    "roles": "roles",
    "enabled_permissions": "enabledPermissions",
    "disabled_permissions": "disabledPermissions",
}


def _address_owner(term: str) -> int | None:
    """The principal holding exactly this address, by its unique index."""
    if "@" not in term:
        return None
    try:
        address = normalize_address(term)
    except ServiceError:
        return None
    return (
        PrincipalEmail.objects.filter(address=address)
        .values_list("principal_id", flat=True)
        .first()
    )


def _permissions_field(label: str) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=label,
        required=False,
        choices=[(p, p) for p in sorted(ALL_PERMISSIONS)],
        widget=FilteredSelectMultiple(label, is_stacked=False),
    )


class PrincipalAdminForm(forms.ModelForm):
    """The model's fields for display and input; PrincipalAdmin.save_model hands the
    values to the principal services, which decide."""

    emails = LinesField(label="Email addresses", help_text="One per line; the first is primary.")
    urls = LinesField(label="URLs")
    external_members = LinesField(label="External members", help_text="Addresses elsewhere.")
    enabled_permissions = _permissions_field("Enabled permissions")
    disabled_permissions = _permissions_field("Disabled permissions")
    new_password = forms.CharField(
        label="New password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Accounts only. Leave empty to keep the current password.",
    )

    class Meta:
        model = Principal
        fields = [
            "type",
            "tenant",
            "name",
            "description",
            "quota",
            "max_domains",
            "max_accounts",
            "max_mailboxes_per_user",
            "roles",
            "member_of",
            "enabled_permissions",
            "disabled_permissions",
            "urls",
            "external_members",
        ]
        help_texts = {
            "member_of": "Groups and mailing lists of the same tenant.",
            "roles": "Roles of the same tenant, or the built-in ones.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["emails"] = list(
                self.instance.emails.order_by("position").values_list("address", flat=True)
            )

    def api_values(self) -> dict[str, Any]:
        """The cleaned input as the services' API-shaped state."""
        data = self.cleaned_data
        values: dict[str, Any] = {}
        for name, api_name in API_FIELDS.items():
            if name not in data:
                continue  # read-only on this form
            value = data[name]
            if name == "roles":
                value = [role.name for role in value]
            values[api_name] = value
        if "member_of" in data:
            groups = list(data["member_of"])
            values["memberOf"] = [g.name for g in groups if g.type != PrincipalType.LIST]
            values["lists"] = [g.name for g in groups if g.type == PrincipalType.LIST]
        return values

    def changed_api_fields(self) -> set[str]:
        changed = {API_FIELDS[name] for name in self.changed_data if name in API_FIELDS}
        if "member_of" in self.changed_data:
            changed |= {"memberOf", "lists"}
        return changed


@admin.register(Principal)
class PrincipalAdmin(ServiceAdmin):
    """Add, change and delete through the principal services: the same checks as the
    console and the API (tenancy, limits, names, addresses, roles), one audit row."""

    form = PrincipalAdminForm
    list_display = ["name", "type", "tenant", "is_active", "created_at"]
    list_filter = ["type"]
    list_select_related = ["tenant"]
    ordering = [NameKey("name").asc()]  # the name's prefix index gives this order
    sortable_by: list[str] = []  # no other order has an index at a million rows
    search_fields = ["^name"]  # see get_search_results
    search_help_text = "The beginning of a name (any case), or an exact e-mail address."
    autocomplete_fields = ["tenant", "roles", "member_of"]
    readonly_fields = [
        "is_superuser",
        "is_active",
        "otp_enabled",
        "created_by",
        "created_at",
        "updated_at",
        "last_login",
    ]
    service_error_fields = {v: k for k, v in API_FIELDS.items()} | {
        "memberOf": "member_of",
        "lists": "member_of",
        "secrets": "new_password",
    }

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        fixed = ["type", "tenant"] if obj is not None else []  # moving = delete + create
        return [*fixed, *self.readonly_fields]

    def get_search_results(self, request, queryset, search_term: str):
        """The beginning of a name, or the owner of an exact address (also serves the
        autocomplete of tenant, roles and groups)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        owner = _address_owner(term)
        also = Q(pk=owner) if owner is not None else None
        return name_starts_with(queryset, term, also=also), False

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and is_builtin_role(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and (is_builtin_role(obj) or obj.pk == request.user.pk):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj: Principal, form: PrincipalAdminForm, change: bool):
        values = form.api_values()
        password = form.cleaned_data.get("new_password")
        if change:
            operations = [
                {"action": "set", "field": name, "value": values[name]}
                for name in sorted(form.changed_api_fields())
            ]
            if password:
                operations.append({"action": "set", "field": "secrets", "value": password})
            current = Principal.objects.get(pk=obj.pk)  # `obj` already holds the input
            principal_update(actor=request.user, principal=current, operations=operations)
            return
        tenant = form.cleaned_data.get("tenant")
        data = {**values, "type": form.cleaned_data["type"]}
        data["tenant"] = tenant.name if tenant is not None else None
        if password:
            data["secrets"] = password
        created = principal_create(actor=request.user, data=data)
        obj.pk, obj.name = created.pk, created.name
        obj._state.adding = False

    def delete_model(self, request, obj: Principal) -> None:
        principal_delete(actor=request.user, principal=obj)

    def delete_summary(self, obj: Principal) -> str:
        if obj.type == PrincipalType.TENANT:
            return f"Tenant: {obj}, with every principal, domain and key in it"
        return f"{obj.get_type_display()}: {obj}"


@admin.register(PrincipalEmail)
class PrincipalEmailAdmin(ReadOnlyAdmin):
    """Addresses are edited on their principal (one list, checked as a whole)."""

    list_display = ["address", "principal", "position"]
    list_select_related = ["principal"]
    ordering = ["address"]
    sortable_by = ["address"]
    search_fields = ["=address"]  # see get_search_results
    search_help_text = "An exact e-mail address."

    def get_search_results(self, request, queryset, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            address = normalize_address(term)
        except ServiceError:
            return queryset.none(), False
        return queryset.filter(address=address), False


class PrincipalRowAdmin(ReadOnlyAdmin):
    """Rows that belong to one principal, found by the beginning of its name."""

    list_select_related = ["principal"]
    search_fields = ["^principal__name"]  # see get_search_results
    search_help_text = "The beginning of the principal's name."
    sortable_by: list[str] = []

    def get_search_results(self, request, queryset, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        return name_starts_with(queryset, term, field="principal__name"), False


@admin.register(AccessToken)
class AccessTokenAdmin(PrincipalRowAdmin):
    """Tokens are issued by their flows (the secret is shown once); an API key is revoked
    by deleting its principal, an OAuth token from the account's security page."""

    list_display = [
        "principal",
        "kind",
        "name",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["kind"]
    exclude = ["token_hash"]


@admin.register(AppPassword)
class AppPasswordAdmin(PrincipalRowAdmin):
    list_display = ["principal", "name", "created_at", "last_used_at"]
    exclude = ["password", "lookup"]  # the lookup is a keyed hash of the password


@admin.register(RecoveryCode)
class RecoveryCodeAdmin(PrincipalRowAdmin):
    list_display = ["principal", "used_at"]
    exclude = ["code_hash"]


@admin.register(OAuthCode)
class OAuthCodeAdmin(PrincipalRowAdmin):
    list_display = ["principal", "client_id", "created_at", "expires_at", "used_at"]
    exclude = ["code_hash"]


@admin.register(EncryptionSettings)
class EncryptionSettingsAdmin(PrincipalRowAdmin):
    """Set by the account itself (its keys are parsed and checked there)."""

    list_display = ["principal", "type", "algorithm", "updated_at"]
    list_filter = ["type"]


@admin.register(LoginThrottle)
class LoginThrottleAdmin(ServiceAdmin):
    """Deleting a row unlocks the account or address it counts."""

    list_display = ["key", "failures", "first_failure_at", "locked_until", "locks"]
    search_fields = ["^key"]
    search_help_text = "The beginning of a key: account:<name>|ip:<address>, ip:<address>."
    sortable_by = ["key"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj: LoginThrottle) -> None:
        throttle_clear(obj.key)
        audit(
            actor=request.user,
            action="login-throttle.clear",
            obj=obj,
            tenant_id=None,
            changes={"key": obj.key, "failures": obj.failures},
        )
