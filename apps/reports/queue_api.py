"""Queued outgoing reports (management API "List Queued Reports"): GET /api/queue/reports,
GET and DELETE (cancel) /api/queue/reports/{id}. Items carry the fields of the management
API's queued report (id, type, domain, range_from, range_to, rua) and our queue state."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers

from apps.accounts.permissions import Perm
from apps.reports import outgoing
from apps.reports.models import OutgoingReport
from mailadmin.api.pagination import paginate_request
from mailadmin.api.schema import PAGE_PARAMETERS, PROBLEM, envelope, page_of
from mailadmin.api.views import MethodPermissionApi, ok


def _iso(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def queued_report_item(report: OutgoingReport) -> dict:
    return {
        "id": report.pk,
        "type": report.kind,
        "domain": report.policy_domain,
        "range_from": _iso(report.range_begin),
        "range_to": _iso(report.range_end),
        "rua": list(report.rua),
        "recipients": list(report.recipients),
        "endpoints": [dict(d) for d in report.deliveries],
        "report_id": report.report_id,
        "file": report.filename,
        "records": report.record_count,
        "messages": report.message_count,
        "status": report.status,
        "error": report.error,
        "created_at": _iso(report.created_at),
        "send_after": _iso(report.send_after),
        "sent_at": _iso(report.sent_at),
        "queued_message_id": report.queued_message_id,
        "attempts": report.attempts,
    }


_DATE = {"allow_null": True}
QUEUED_REPORT_FIELDS = {
    "id": serializers.IntegerField(),
    "type": serializers.CharField(help_text="dmarc, tls or failure (DMARC failure, RFC 6591)"),
    "domain": serializers.CharField(help_text="The policy domain the report is about"),
    "range_from": serializers.DateTimeField(),
    "range_to": serializers.DateTimeField(),
    "rua": serializers.ListField(child=serializers.CharField(), help_text="As published"),
    "recipients": serializers.ListField(child=serializers.CharField()),
    "endpoints": serializers.ListField(
        child=inline_serializer(
            name="QueuedReportEndpoint",
            fields={
                "uri": serializers.CharField(help_text="A TLS-RPT https: rua"),
                "status": serializers.CharField(help_text="pending, sent or failed"),
                "attempts": serializers.IntegerField(),
                "http_status": serializers.IntegerField(allow_null=True),
                "error": serializers.CharField(),
                "next_attempt_at": serializers.DateTimeField(**_DATE),
                "sent_at": serializers.DateTimeField(**_DATE),
            },
        ),
        help_text="The https: endpoints the report is POSTed to, each with its state",
    ),
    "report_id": serializers.CharField(),
    "file": serializers.CharField(help_text="RFC 7489 / RFC 8460 file name"),
    "records": serializers.IntegerField(),
    "messages": serializers.IntegerField(help_text="Messages (DMARC) or sessions (TLS)"),
    "status": serializers.CharField(
        help_text="queued, sending (endpoints being retried), sent, failed or cancelled"
    ),
    "error": serializers.CharField(),
    "created_at": serializers.DateTimeField(),
    "send_after": serializers.DateTimeField(),
    "sent_at": serializers.DateTimeField(**_DATE),
    "queued_message_id": serializers.IntegerField(allow_null=True),
    "attempts": serializers.IntegerField(help_text="Tries to hand the mail to the queue"),
}
QUEUED_REPORT = inline_serializer(name="QueuedReport", fields=QUEUED_REPORT_FIELDS)
QUEUED_REPORT_DETAIL = inline_serializer(
    name="QueuedReportDetail",
    fields={
        **QUEUED_REPORT_FIELDS,
        "report": serializers.JSONField(
            help_text="The XML text (dmarc), JSON (tls), or the failure report's facts and "
            "original headers (failure)"
        ),
    },
)
ID = OpenApiParameter("report_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class QueuedReportListApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.OUTGOING_REPORT_LIST}

    @extend_schema(
        operation_id="queue_reports_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of("QueuedReportPage", QUEUED_REPORT), 403: PROBLEM},
    )
    def get(self, request):
        queryset = outgoing.outgoing_report_list(actor=request.user)
        return ok(paginate_request(request, queryset, queued_report_item))


class QueuedReportDetailApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.OUTGOING_REPORT_GET, "DELETE": Perm.OUTGOING_REPORT_DELETE}

    @extend_schema(
        operation_id="queue_reports_get",
        parameters=[ID],
        responses={200: envelope("QueuedReportData", QUEUED_REPORT_DETAIL), 404: PROBLEM},
    )
    def get(self, request, report_id: int):
        report = outgoing.outgoing_report_get(actor=request.user, report_id=report_id)
        return ok({**queued_report_item(report), "report": outgoing.report_content(report)})

    @extend_schema(
        operation_id="queue_reports_cancel",
        parameters=[ID],
        description="Cancel a report waiting for its send time (409 once it was queued).",
        responses={200: envelope("QueuedReportCancelled", QUEUED_REPORT), 404: PROBLEM,
                   409: PROBLEM},
    )  # fmt: skip
    def delete(self, request, report_id: int):
        report = outgoing.outgoing_report_cancel(actor=request.user, report_id=report_id)
        return ok(queued_report_item(report))
