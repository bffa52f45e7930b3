"""Reports pages (console)."""

from django.urls import path

from apps.reports import views

app_name = "reports"

urlpatterns = [
    path("", views.dmarc_list, name="index"),
    path("dmarc/", views.dmarc_list, name="dmarc"),
    path("tls/", views.tls_list, name="tls"),
    path("arf/", views.arf_list, name="arf"),
    path("upload/", views.report_upload, name="upload"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/sources/<str:ip>/", views.source_detail, name="source"),
    path("dmarc/<int:pk>/", views.dmarc_detail, name="dmarc-detail"),
    path("tls/<int:pk>/", views.tls_detail, name="tls-detail"),
    path("arf/<int:pk>/", views.arf_detail, name="arf-detail"),
    path("failed/", views.failure_list, name="failed"),
    path("outgoing/", views.outgoing_list, name="outgoing"),
    path("outgoing/<int:pk>/cancel/", views.outgoing_cancel, name="outgoing-cancel"),
    path("failed/<int:pk>/raw/", views.failure_raw, name="failed-raw"),
    path("failed/<int:pk>/delete/", views.failure_delete, name="failed-delete"),
    path("<str:group>/<int:pk>/delete/", views.report_delete, name="delete"),
]
