from django.contrib import admin

from mailadmin.core.models import AuditEvent, TaskRun


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "state", "done", "total", "actor", "created_at"]
    list_filter = ["kind", "state"]
    list_select_related = ["actor"]
    readonly_fields = [f.name for f in TaskRun._meta.fields]
    show_full_result_count = False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log is append-only: nobody edits or deletes history, not even here."""

    list_display = [
        "created_at",
        "actor_name",
        "interface",
        "ip",
        "action",
        "object_type",
        "object_repr",
        "tenant",
    ]
    list_filter = ["interface", "action", "object_type"]
    search_fields = ["actor_name", "object_repr", "object_id", "action"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
