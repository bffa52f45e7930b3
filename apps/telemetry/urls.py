from django.urls import path

from apps.telemetry import views

app_name = "telemetry"

urlpatterns = [
    path("", views.index, name="index"),
    path("self-check/", views.self_check, name="self-check"),
]

urlpatterns += [
    path("logs/", views.logs, name="logs"),
    path("troubleshoot/delivery/", views.troubleshoot_delivery, name="troubleshoot-delivery"),
]
