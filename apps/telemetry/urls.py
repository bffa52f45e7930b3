from django.urls import path

from apps.telemetry import telemetry_views, views

app_name = "telemetry"

urlpatterns = [
    path("", views.index, name="index"),
    path("self-check/", views.self_check, name="self-check"),
]

urlpatterns += [
    path("logs/", views.logs, name="logs"),
    path("troubleshoot/delivery/", views.troubleshoot_delivery, name="troubleshoot-delivery"),
]

urlpatterns += [
    path("metrics/", telemetry_views.metrics, name="metrics"),
    path("traces/", telemetry_views.traces, name="traces"),
    path("traces/<str:trace_id>/", telemetry_views.trace, name="trace"),
]
