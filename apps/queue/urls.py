"""Queue pages (console)."""

from django.urls import path

from apps.queue import views

app_name = "queue"

urlpatterns = [
    path("", views.queue_index, name="index"),
    path("bulk/", views.queue_bulk, name="bulk"),
    path("control/", views.queue_toggle, name="control"),
    path("<int:pk>/", views.message_detail, name="detail"),
    path("<int:pk>/raw/", views.message_raw, name="raw"),
    path("<int:pk>/reschedule/", views.message_reschedule, name="reschedule"),
    path("<int:pk>/cancel/", views.message_cancel, name="cancel"),
]
