from django.contrib import admin

from mailadmin.admin_base import ReadOnlyAdmin
from mailadmin.core.models import AuditEvent, TaskRun


@admin.register(TaskRun)
class TaskRunAdmin(ReadOnlyAdmin):
    """Runs are written by their tasks alone."""

    list_display = ["title", "kind", "state", "done", "total", "actor", "created_at"]
    list_filter = ["state"]
    list_select_related = ["actor"]
    sortable_by: list[str] = []


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit log is append-only: nobody edits or deletes history, not even here. It is
    the biggest table: no date drill-down or per-value filters (each scans all of it);
    the console's Audit log page filters by action, actor and object."""

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
    list_filter = ["interface"]
    list_select_related = ["tenant"]
    sortable_by: list[str] = []
