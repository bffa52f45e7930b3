from django.urls import path

from apps.telemetry import tools_api
from apps.telemetry.api import SelfCheckStartApi

urlpatterns = [
    path("telemetry/self-check", SelfCheckStartApi.as_view(), name="api-self-check"),
]

# Logs and delivery troubleshooting (apps.telemetry.tools_api).

urlpatterns += [
    path("logs", tools_api.LogListApi.as_view(), name="api-logs"),
    path(
        "troubleshoot/token",
        tools_api.TroubleshootTokenApi.as_view(),
        name="api-troubleshoot-token",
    ),
    path(
        "troubleshoot/delivery/<str:recipient>",
        tools_api.TroubleshootDeliveryApi.as_view(),
        name="api-troubleshoot-delivery",
    ),
]
