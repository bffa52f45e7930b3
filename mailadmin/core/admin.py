from django.contrib import admin

from mailadmin.core.models import TaskRun


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "state", "done", "total", "actor", "created_at"]
    list_filter = ["kind", "state"]
    list_select_related = ["actor"]
    readonly_fields = [f.name for f in TaskRun._meta.fields]
    show_full_result_count = False
