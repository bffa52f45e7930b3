"""The telemetry API: metrics, stored traces, and their live streams (superadmins only:
metrics and traces are server-wide, so a tenant admin gets 403 from the selectors)."""

from __future__ import annotations

from datetime import UTC

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from apps.accounts.permissions import Perm
from apps.telemetry import live
from apps.telemetry.metrics import metrics_since
from apps.telemetry.traces import event_as_dict, trace_get, trace_list, trace_values
from mailadmin.api.pagination import paginate_request
from mailadmin.api.permissions import PUBLIC
from mailadmin.api.schema import PAGE_PARAMETERS, PROBLEM, envelope, page_of
from mailadmin.api.serializers import QueryParams
from mailadmin.api.streams import event_stream
from mailadmin.api.views import MethodPermissionApi, ok
from mailadmin.errors import ServiceError


def _any() -> serializers.JSONField:
    return serializers.JSONField()


class MetricsParams(QueryParams):
    after = serializers.CharField(max_length=64, required=False)


class TraceListParams(QueryParams):
    type = serializers.CharField(max_length=60, required=False)
    values = serializers.ChoiceField(choices=["0", "1"], required=False)


class MetricsLiveParams(QueryParams):
    metrics = serializers.CharField(max_length=2000, required=False)
    interval = serializers.CharField(max_length=20, required=False)
    token = serializers.CharField(max_length=1024, required=False)


class TracesLiveParams(QueryParams):
    filter = serializers.CharField(max_length=60, required=False)
    token = serializers.CharField(max_length=1024, required=False)


def _params(cls, request) -> dict:
    params = cls(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data


def _after(raw: str | None):
    if not raw:
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))  # a bare + in a URL arrives as a space
    except ValueError:
        value = None
    if value is None:
        raise ServiceError(
            f"Invalid value for field after: {raw!r} is not an ISO 8601 date and time.",
            field="after",
        )
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class MetricsApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.METRICS_LIST}

    @extend_schema(
        operation_id="telemetry_metrics",
        parameters=[
            OpenApiParameter(
                "after", OpenApiTypes.STR, description="ISO 8601 date and time; empty: an hour ago"
            )
        ],
        description=(
            "Per-minute metrics after `after` (default: the last hour), oldest first: "
            'counters `{"name", "type": "counter", "timestamp", "value"}` (events of that '
            'type in the minute) and histograms `{"name", "type": "histogram", "timestamp", '
            '"count", "sum"}` (message.size, delivery.time, spam.score). Superadmins only.'
        ),
        responses={
            200: envelope("TelemetryMetrics", serializers.ListField(child=_any())),
            400: PROBLEM,
            403: PROBLEM,
        },  # fmt: skip
    )
    def get(self, request):
        after = _after(_params(MetricsParams, request).get("after"))
        return ok(metrics_since(actor=request.user, after=after))


class TraceListApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.TRACING_LIST}

    @extend_schema(
        operation_id="telemetry_traces",
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("type", OpenApiTypes.STR, description="an event type it holds"),
            OpenApiParameter(
                "values", {"type": "integer", "enum": [0, 1]}, description="1: with key values"
            ),
        ],
        responses={200: page_of("TelemetryTraces", _any()), 400: PROBLEM, 403: PROBLEM},
    )
    def get(self, request):
        params = _params(TraceListParams, request)
        traces = trace_list(actor=request.user, type=params.get("type"))
        with_values = params.get("values") == "1"
        found: dict[str, dict] = {}

        def prepare(items):
            if with_values:
                found.update(trace_values(list(items)))

        def serialize(trace):
            item = {"id": trace.id, "kind": trace.kind, "createdAt": trace.started_at.isoformat()}
            if with_values:
                item["values"] = found.get(trace.id, {})
            return item

        return ok(paginate_request(request, traces, serialize, prepare=prepare))


class TraceDetailApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.TRACING_GET}

    @extend_schema(
        operation_id="telemetry_trace",
        responses={
            200: envelope("TelemetryTrace", serializers.ListField(child=_any())),
            403: PROBLEM,
            404: PROBLEM,
        },  # fmt: skip
    )
    def get(self, request, trace_id: str):
        return ok([event_as_dict(e) for e in trace_get(actor=request.user, trace_id=trace_id)])


class MetricsTokenApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.METRICS_LIVE}

    @extend_schema(
        operation_id="telemetry_metrics_token",
        responses={
            200: envelope("TelemetryMetricsToken", serializers.CharField()),
            403: PROBLEM,
        },  # fmt: skip
    )
    def get(self, request):
        return ok(live.token_issue(actor=request.user, stream="metrics"))


class TracingTokenApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.TRACING_LIVE}

    @extend_schema(
        operation_id="telemetry_tracing_token",
        responses={
            200: envelope("TelemetryTracingToken", serializers.CharField()),
            403: PROBLEM,
        },  # fmt: skip
    )
    def get(self, request):
        return ok(live.token_issue(actor=request.user, stream="tracing"))


class MetricsLiveApi(MethodPermissionApi):
    """Public as far as headers go: EventSource cannot send them, so the `token` query
    parameter (from /telemetry/live/metrics-token) is the credential; none -> 401."""

    method_permissions = {"GET": PUBLIC}

    @extend_schema(
        operation_id="telemetry_metrics_live",
        parameters=[
            OpenApiParameter("metrics", OpenApiTypes.STR, description="comma-separated names"),
            OpenApiParameter("interval", OpenApiTypes.NUMBER, description="seconds, 1 to 60"),
            OpenApiParameter("token", OpenApiTypes.STR, required=True),
        ],
        description="Server-Sent Events: `metrics` events with the last minute's totals "
        "every `interval` seconds, then `end` after MAILADMIN_TELEMETRY_LIVE_SECONDS.",
        responses={
            (200, "text/event-stream"): OpenApiTypes.STR,
            400: PROBLEM,
            401: PROBLEM,
            429: PROBLEM,
        },
    )
    def get(self, request):
        params = _params(MetricsLiveParams, request)
        live.token_principal(params.get("token", ""), stream="metrics")
        interval = live.parse_interval(params.get("interval"))
        names = [n.strip() for n in params.get("metrics", "").split(",") if n.strip()]
        stream = live.metrics_stream(names=names, interval=interval)
        return event_stream(stream, token=params["token"], seconds=live.token_seconds())


class TracesLiveApi(MethodPermissionApi):
    """As MetricsLiveApi: the `token` (from /telemetry/live/tracing-token) authorises."""

    method_permissions = {"GET": PUBLIC}

    @extend_schema(
        operation_id="telemetry_traces_live",
        parameters=[
            OpenApiParameter("filter", OpenApiTypes.STR, description="event type prefix"),
            OpenApiParameter("token", OpenApiTypes.STR, required=True),
        ],
        description="Server-Sent Events: a `trace` event per new trace event (of a type "
        "starting with `filter`), then `end` after MAILADMIN_TELEMETRY_LIVE_SECONDS.",
        responses={
            (200, "text/event-stream"): OpenApiTypes.STR,
            400: PROBLEM,
            401: PROBLEM,
            429: PROBLEM,
        },
    )
    def get(self, request):
        params = _params(TracesLiveParams, request)
        live.token_principal(params.get("token", ""), stream="tracing")
        stream = live.traces_stream(filter=params.get("filter", ""))
        return event_stream(stream, token=params["token"], seconds=live.token_seconds())
