"""The Django admin for operators (superadmins only). Every change made here is audited
with interface "admin"; secrets and hashes are never shown or editable."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model, QuerySet

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
from apps.accounts.principals.services import is_builtin_role
from mailadmin.audit import SECRET_FIELDS, audit
from mailadmin.errors import ServiceError

HIDDEN_FIELDS = frozenset({"password", "token_hash", "code_hash", "totp_secret"})


def _plain(value: Any) -> Any:
    """A JSON-safe rendering of a form value for the audit log."""
    if isinstance(value, Model):
        return str(value)
    if isinstance(value, QuerySet | list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool | dict):
        return value
    return str(value)


def _tenant_of(obj: Model) -> int | None:
    principal = obj if isinstance(obj, Principal) else getattr(obj, "principal", None)
    if principal is None:
        return None
    return principal.pk if principal.type == PrincipalType.TENANT else principal.tenant_id


class AuditedAdmin(admin.ModelAdmin):
    """Writes one audit row per save (with the changed fields) and per deleted object."""

    show_full_result_count = False

    def _action(self, verb: str) -> str:
        return f"{self.model._meta.model_name}.{verb}"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        changes = {
            name: ("<redacted>" if name in SECRET_FIELDS | HIDDEN_FIELDS else _plain(value))
            for name, value in form.cleaned_data.items()
            if name in form.changed_data
        }
        for formset in formsets:
            label = formset.prefix
            added = [str(o) for o in getattr(formset, "new_objects", [])]
            changed = [str(o) for o, _ in getattr(formset, "changed_objects", [])]
            removed = [str(o) for o in getattr(formset, "deleted_objects", [])]
            if added or changed or removed:
                changes[label] = {"added": added, "changed": changed, "removed": removed}
        if change and not changes:
            return
        audit(
            actor=request.user,
            action=self._action("update" if change else "create"),
            obj=form.instance,
            tenant_id=_tenant_of(form.instance),
            changes=changes,
        )

    def _audit_delete(self, request, obj: Model) -> None:
        tenant_id = _tenant_of(obj)
        if isinstance(obj, Principal) and obj.type == PrincipalType.TENANT:
            tenant_id = None  # the tenant's own audit rows go with it
        audit(
            actor=request.user,
            action=self._action("delete"),
            obj=obj,
            tenant_id=tenant_id,
            changes={"repr": str(obj)},
        )

    def delete_model(self, request, obj):
        self._audit_delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self._audit_delete(request, obj)
        super().delete_queryset(request, queryset)


class ReadOnlyAdmin(AuditedAdmin):
    """Rows created only by mailadmin itself: visible, deletable (revocation), not editable."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class EmailForm(forms.ModelForm):
    class Meta:
        model = PrincipalEmail
        fields = ["principal", "address", "position"]

    def clean_address(self) -> str:
        try:
            return normalize_address(self.cleaned_data["address"])
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None


class PrincipalEmailInline(admin.TabularInline):
    model = PrincipalEmail
    form = EmailForm
    extra = 0
    ordering = ["position"]


@admin.register(Principal)
class PrincipalAdmin(AuditedAdmin):
    """Raw access for operators. The console and the API enforce tenancy and limits; here
    a superadmin can repair data, and each change still lands in the audit log."""

    list_display = ["name", "type", "tenant", "is_active", "is_superuser", "created_at"]
    list_filter = ["type", "is_active", "is_superuser"]
    search_fields = ["name", "description", "emails__address"]
    list_select_related = ["tenant"]
    raw_id_fields = ["tenant", "created_by"]
    filter_horizontal = ["roles", "member_of"]
    exclude = ["password", "totp_secret", "last_login"]
    readonly_fields = ["otp_enabled", "created_at", "updated_at"]
    inlines = [PrincipalEmailInline]

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and is_builtin_role(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and (is_builtin_role(obj) or obj.pk == request.user.pk):
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        queryset = queryset.exclude(pk=request.user.pk).exclude(
            type=PrincipalType.ROLE, tenant__isnull=True
        )
        super().delete_queryset(request, queryset)


@admin.register(PrincipalEmail)
class PrincipalEmailAdmin(AuditedAdmin):
    form = EmailForm
    list_display = ["address", "principal", "position"]
    search_fields = ["address", "principal__name"]
    list_select_related = ["principal"]
    raw_id_fields = ["principal"]


@admin.register(AccessToken)
class AccessTokenAdmin(AuditedAdmin):
    """Tokens are issued by the API (the secret is shown once); here they can be revoked."""

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
    list_select_related = ["principal"]
    raw_id_fields = ["principal"]
    exclude = ["token_hash"]
    readonly_fields = ["principal", "kind", "name", "created_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(AppPassword)
class AppPasswordAdmin(ReadOnlyAdmin):
    list_display = ["principal", "name", "created_at", "last_used_at"]
    list_select_related = ["principal"]
    search_fields = ["principal__name", "name"]
    exclude = ["password"]


@admin.register(RecoveryCode)
class RecoveryCodeAdmin(ReadOnlyAdmin):
    list_display = ["principal", "used_at"]
    list_select_related = ["principal"]
    search_fields = ["principal__name"]
    exclude = ["code_hash"]


@admin.register(OAuthCode)
class OAuthCodeAdmin(ReadOnlyAdmin):
    list_display = ["principal", "client_id", "created_at", "expires_at", "used_at"]
    list_select_related = ["principal"]
    exclude = ["code_hash"]


@admin.register(LoginThrottle)
class LoginThrottleAdmin(AuditedAdmin):
    """Clearing `locked_until` (or deleting the row) unlocks an account or address."""

    list_display = ["key", "failures", "first_failure_at", "locked_until"]
    search_fields = ["key"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(EncryptionSettings)
class EncryptionSettingsAdmin(AuditedAdmin):
    list_display = ["principal", "type", "algorithm", "updated_at"]
    list_filter = ["type"]
    list_select_related = ["principal"]
    raw_id_fields = ["principal"]
