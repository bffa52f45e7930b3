from django.contrib import admin

from apps.config import services
from apps.config.models import Setting
from mailadmin.admin_base import ServiceAdmin


@admin.register(Setting)
class SettingAdmin(ServiceAdmin):
    """Settings are written through the store's service (its checks, audit, and the new
    generation every process waits for); a key is renamed by deleting it."""

    list_display = ["key", "value", "updated_at"]
    search_fields = ["^key"]
    search_help_text = "The beginning of a key, e.g. spam-filter.rule."
    sortable_by = ["key"]
    service_error_fields = {"key": "key", "prefix": "key"}

    def get_readonly_fields(self, request, obj=None):
        return ["key", "updated_at"] if obj is not None else ["updated_at"]

    def save_model(self, request, obj: Setting, form, change) -> None:
        services.settings_update(
            actor=request.user, changes=[services.Insert(values=[(obj.key, obj.value)])]
        )

    def delete_model(self, request, obj: Setting) -> None:
        services.settings_update(actor=request.user, changes=[services.Delete(keys=[obj.key])])
