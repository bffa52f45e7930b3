from django.urls import path

from apps.telemetry import telemetry_api as t
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

# Metrics and traces (apps.telemetry.telemetry_api).
urlpatterns += [
    path("telemetry/metrics", t.MetricsApi.as_view(), name="api-telemetry-metrics"),
    path("telemetry/metrics/live", t.MetricsLiveApi.as_view(), name="api-telemetry-metrics-live"),
    path("telemetry/live/metrics-token", t.MetricsTokenApi.as_view(), name="api-metrics-token"),
    path("telemetry/live/tracing-token", t.TracingTokenApi.as_view(), name="api-tracing-token"),
    path("telemetry/traces", t.TraceListApi.as_view(), name="api-telemetry-traces"),
    path("telemetry/traces/live", t.TracesLiveApi.as_view(), name="api-telemetry-traces-live"),
    path("telemetry/trace/<str:trace_id>", t.TraceDetailApi.as_view(), name="api-telemetry-trace"),
]
