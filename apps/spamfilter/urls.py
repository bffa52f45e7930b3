from django.urls import path

from apps.spamfilter import quarantine_views, views

app_name = "spamfilter"

urlpatterns = [
    path("", views.classify, name="index"),
    path("quarantine/", quarantine_views.quarantine_index, name="quarantine"),
    path("quarantine/bulk/", quarantine_views.quarantine_bulk, name="quarantine-bulk"),
    path("quarantine/<int:pk>/", quarantine_views.quarantine_detail, name="quarantine-detail"),
    path(
        "quarantine/<int:pk>/release/",
        quarantine_views.quarantine_item_release,
        name="quarantine-release",
    ),
    path(
        "quarantine/<int:pk>/delete/",
        quarantine_views.quarantine_item_delete,
        name="quarantine-delete",
    ),
]
