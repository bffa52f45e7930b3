from django.urls import path

from apps.telemetry.api import SelfCheckStartApi

urlpatterns = [
    path("telemetry/self-check", SelfCheckStartApi.as_view(), name="api-self-check"),
]

from apps.telemetry import telemetry_api as t  # noqa: E402 - metrics and traces, appended

urlpatterns += [
    path("telemetry/metrics", t.MetricsApi.as_view(), name="api-telemetry-metrics"),
    path("telemetry/metrics/live", t.MetricsLiveApi.as_view(), name="api-telemetry-metrics-live"),
    path("telemetry/live/metrics-token", t.MetricsTokenApi.as_view(), name="api-metrics-token"),
    path("telemetry/live/tracing-token", t.TracingTokenApi.as_view(), name="api-tracing-token"),
    path("telemetry/traces", t.TraceListApi.as_view(), name="api-telemetry-traces"),
    path("telemetry/traces/live", t.TracesLiveApi.as_view(), name="api-telemetry-traces-live"),
    path("telemetry/trace/<str:trace_id>", t.TraceDetailApi.as_view(), name="api-telemetry-trace"),
]
