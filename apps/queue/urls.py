"""Queue pages (console)."""

from django.urls import path

from apps.queue import fetch_views, views

app_name = "queue"

urlpatterns = [
    path("", views.queue_index, name="index"),
    path("bulk/", views.queue_bulk, name="bulk"),
    path("control/", views.queue_toggle, name="control"),
    path("<int:pk>/", views.message_detail, name="detail"),
    path("<int:pk>/raw/", views.message_raw, name="raw"),
    path("<int:pk>/reschedule/", views.message_reschedule, name="reschedule"),
    path("<int:pk>/cancel/", views.message_cancel, name="cancel"),
    path("fetch/", fetch_views.fetch_list, name="fetch-list"),
    path("fetch/new/", fetch_views.fetch_create, name="fetch-create"),
    path("fetch/monitoring/", fetch_views.fetch_monitoring, name="fetch-monitoring"),
    path(
        "fetch/monitoring/<int:entry_id>/delete/",
        fetch_views.fetch_entry_delete,
        name="fetch-entry-delete",
    ),
    path("fetch/<uuid:job_uuid>/", fetch_views.fetch_detail, name="fetch-detail"),
    path("fetch/<uuid:job_uuid>/validate/", fetch_views.fetch_validate, name="fetch-validate"),
    path("fetch/<uuid:job_uuid>/run/", fetch_views.fetch_run, name="fetch-run"),
    path("fetch/<uuid:job_uuid>/delete/", fetch_views.fetch_delete, name="fetch-delete"),
]
