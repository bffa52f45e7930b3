"""Incoming report API: the management API's lists (/api/reports/dmarc|tls|arf), one report
with its content, deletion, uploads, and the files that failed to ingest."""

from __future__ import annotations

from django.conf import settings
from django.http.multipartparser import MultiPartParserError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers

from apps.accounts.permissions import Perm
from apps.domains.selectors import domain_get
from apps.reports import selectors, services
from apps.reports.models import Source
from apps.reports.parsing import size_text
from apps.reports.serializers import (
    ARF_ITEM,
    DETAILS,
    DMARC_ITEM,
    DMARC_SUMMARY,
    FAILURE_ITEM,
    TLS_ITEM,
    UPLOAD_RESULT,
    dmarc_record_item,
    failure_item,
    feedback_detail,
    parse_day,
    parse_result,
    report_item,
    tls_policy_item,
)
from mailadmin.api.pagination import paginate_request
from mailadmin.api.schema import NULL_DATA, PAGE_PARAMETERS, PROBLEM, envelope, page_of
from mailadmin.api.views import MethodPermissionApi, ok
from mailadmin.errors import ServiceError, ValidationFailed

ITEMS = {"dmarc": DMARC_ITEM, "tls": TLS_ITEM, "arf": ARF_ITEM}
FILTER_PARAMETERS = [
    OpenApiParameter("domain", OpenApiTypes.STR, description="Domain name or id"),
    OpenApiParameter("reporter", OpenApiTypes.STR, description="Reporting organisation (part)"),
    OpenApiParameter(
        "from", OpenApiTypes.DATE, description="Reports whose period ends on or after this day"
    ),
    OpenApiParameter(
        "to", OpenApiTypes.DATE, description="Reports whose period begins on or before this day"
    ),
]
RESULT_PARAMETER = OpenApiParameter(
    "result", OpenApiTypes.STR, enum=["pass", "fail"], description="fail: something failed"
)
FEEDBACK_TYPE_PARAMETER = OpenApiParameter(
    "feedback-type", OpenApiTypes.STR, description="abuse, auth-failure, opt-out, ..."
)
ID_PARAMETER = OpenApiParameter("report_id", OpenApiTypes.INT, OpenApiParameter.PATH)


RAW_BODY = {"type": "string", "format": "binary", "minLength": 1}


class UploadTooLarge(ServiceError):
    status = 413
    title = "Payload Too Large"


def _filters(request, group: str) -> selectors.ReportFilters:
    params = request.query_params
    domain = None
    if params.get("domain"):
        domain = domain_get(actor=request.user, name_or_id=params["domain"][:255])
    return selectors.ReportFilters(
        domain=domain,
        reporter=(params.get("reporter") or "").strip()[:255],
        since=parse_day(params.get("from"), "from"),
        until=parse_day(params.get("to"), "to", end_of_day=True),
        result=parse_result(params.get("result")) if group != "arf" else "",
        feedback_type=(params.get("feedback-type") or "").strip().lower()[:64]
        if group == "arf"
        else "",
    )


def _list_view(group: str) -> type[MethodPermissionApi]:
    parameters = [*PAGE_PARAMETERS, *FILTER_PARAMETERS]
    parameters.append(FEEDBACK_TYPE_PARAMETER if group == "arf" else RESULT_PARAMETER)

    class ReportListApi(MethodPermissionApi):
        method_permissions = {"GET": Perm.INCOMING_REPORT_LIST}

        @extend_schema(
            operation_id=f"reports_{group}_list",
            parameters=parameters,
            responses={
                200: page_of(f"{group.capitalize()}ReportPage", ITEMS[group]),
                400: PROBLEM,
                403: PROBLEM,
                404: PROBLEM,
            },
        )
        def get(self, request):
            queryset = selectors.report_list(
                actor=request.user, group=group, filters=_filters(request, group)
            )
            return ok(paginate_request(request, queryset, report_item))

    ReportListApi.__name__ = f"{group.capitalize()}ReportListApi"
    ReportListApi.__qualname__ = ReportListApi.__name__
    return ReportListApi


DmarcReportListApi = _list_view("dmarc")
TlsReportListApi = _list_view("tls")
ArfReportListApi = _list_view("arf")


def _detail_view(group: str) -> type[MethodPermissionApi]:
    class ReportDetailApi(MethodPermissionApi):
        method_permissions = {
            "GET": Perm.INCOMING_REPORT_GET,
            "DELETE": Perm.INCOMING_REPORT_DELETE,
        }

        @extend_schema(
            operation_id=f"reports_{group}_get",
            parameters=[ID_PARAMETER, *(PAGE_PARAMETERS if group == "dmarc" else [])],
            responses={
                200: envelope(f"{group.capitalize()}Report", DETAILS[group]),
                403: PROBLEM,
                404: PROBLEM,
            },
            description={
                "dmarc": "The report and a page of its records (page/limit apply to them).",
                "tls": "The report and its policies with their failure details.",
                "arf": "The feedback report with all its fields and the original headers.",
            }[group],
        )
        def get(self, request, report_id: int):
            report = selectors.report_get(actor=request.user, group=group, report_id=report_id)
            data = report_item(report)
            if group == "dmarc":
                records = selectors.dmarc_record_list(report=report)
                data["records"] = paginate_request(request, records, dmarc_record_item)
            elif group == "tls":
                data["policies"] = [tls_policy_item(p) for p in report.tls_policies.all()]
            else:
                data.update(feedback_detail(report))
            return ok(data)

        @extend_schema(
            operation_id=f"reports_{group}_delete",
            parameters=[ID_PARAMETER],
            responses={200: NULL_DATA, 403: PROBLEM, 404: PROBLEM},
        )
        def delete(self, request, report_id: int):
            report = selectors.report_get(actor=request.user, group=group, report_id=report_id)
            services.report_delete(actor=request.user, report=report)
            return ok(None)

    ReportDetailApi.__name__ = f"{group.capitalize()}ReportDetailApi"
    ReportDetailApi.__qualname__ = ReportDetailApi.__name__
    return ReportDetailApi


DmarcReportDetailApi = _detail_view("dmarc")
TlsReportDetailApi = _detail_view("tls")
ArfReportDetailApi = _detail_view("arf")


def _upload_cap() -> int:
    return services.report_limits().max_compressed


def _too_large() -> UploadTooLarge:
    return UploadTooLarge(f"The upload is larger than the {size_text(_upload_cap())} limit.")


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _raw_body(request) -> bytes:
    """The body as sent, read in chunks up to the cap (Django's request.body would refuse
    anything over DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB)."""
    cap = _upload_cap()
    chunks, size = [], 0
    while chunk := request._request.read(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _raw_name(request) -> str:
    name = request.query_params.get("filename") or ""
    disposition = request.headers.get("Content-Disposition", "")
    if not name and "filename=" in disposition:
        name = disposition.split("filename=", 1)[1].split(";", 1)[0].strip().strip('"')
    return name.strip()[:255] or "upload"


class ReportUploadApi(MethodPermissionApi):
    """One file as the raw body (any content type but multipart), or several as multipart
    `file` fields; answers one result per report found (per file when none could be read)."""

    method_permissions = {"POST": Perm.INCOMING_REPORT_CREATE}

    @extend_schema(
        operation_id="reports_upload",
        parameters=[
            OpenApiParameter(
                "domain",
                OpenApiTypes.STR,
                description="File reports that name no domain under this one of yours",
            ),
            OpenApiParameter("filename", OpenApiTypes.STR, description="Name of a raw body"),
        ],
        # Only the raw body is described: a multipart `file` part is read as sent (a file,
        # or text without a filename), which JSON Schema cannot say; see the description.
        request={
            "application/octet-stream": {"type": "string", "format": "binary", "minLength": 1}
        },
        description=(
            "One report file as the raw body (any content type except multipart; name it with "
            "?filename=), or several as multipart/form-data parts named `file`. Answers one "
            "result per report found: ingested, duplicate (the id of the report already "
            "stored) or failed (the id of the kept file and the reason). An upload larger "
            "than MAILADMIN_REPORTS_ASYNC_UPLOAD is ingested by a worker instead: 202 with "
            "the task's id; GET /api/task/{id} shows its progress, then the same results."
        ),
        responses={
            200: envelope("ReportUploadResults", serializers.ListField(child=UPLOAD_RESULT)),
            202: envelope(
                "ReportUploadQueued",
                inline_serializer(
                    name="ReportUploadTask",
                    fields={
                        "taskId": serializers.UUIDField(help_text="Poll GET /api/task/{id}"),
                        "files": serializers.ListField(child=serializers.CharField()),
                    },
                ),
            ),
            400: PROBLEM,
            403: PROBLEM,
            404: PROBLEM,
            413: PROBLEM,
        },
    )
    def post(self, request):
        if _content_length(request) > _upload_cap():
            raise _too_large()
        domain = None
        if request.query_params.get("domain"):
            domain = domain_get(actor=request.user, name_or_id=request.query_params["domain"])
        if request.content_type.startswith("multipart/form-data"):
            django_request = request._request
            try:
                names = list(django_request.FILES) + list(django_request.POST)
            except MultiPartParserError as exc:
                raise ValidationFailed(f"Malformed multipart body: {exc}", field="file") from None
            for name in names:
                if name != "file":
                    raise ValidationFailed(f"Unrecognized field: {name}", field=name)
            files = [(u.name or "upload", u.read()) for u in django_request.FILES.getlist("file")]
            # A `file` part sent without a filename arrives as text: its content still counts.
            files += [("file", text.encode()) for text in django_request.POST.getlist("file")]
            if not files:
                raise ValidationFailed("Missing required field: file", field="file")
        else:
            body = _raw_body(request)
            if not body:
                raise ValidationFailed(
                    "The request has no body: send a report as the body, or files as "
                    "multipart file fields.",
                    field="file",
                )
            files = [(_raw_name(request), body)]
        if sum(len(data) for _, data in files) > settings.MAILADMIN_REPORTS_ASYNC_UPLOAD:
            run = services.report_upload_start(
                actor=request.user, files=files, source=Source.API, domain=domain
            )
            return ok({"taskId": str(run.pk), "files": [name for name, _ in files]}, status=202)
        results = services.report_upload(
            actor=request.user, files=files, source=Source.API, domain=domain
        )
        return ok([result.as_dict() for result in results])


class IngestFailureListApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.INCOMING_REPORT_LIST}

    @extend_schema(
        operation_id="reports_failed_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of("ReportIngestFailurePage", FAILURE_ITEM), 403: PROBLEM},
    )
    def get(self, request):
        queryset = selectors.ingest_failure_list(actor=request.user)
        return ok(paginate_request(request, queryset, failure_item))


class IngestFailureDetailApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.INCOMING_REPORT_GET, "DELETE": Perm.INCOMING_REPORT_DELETE}

    @extend_schema(
        operation_id="reports_failed_get",
        parameters=[OpenApiParameter("failure_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: envelope("ReportIngestFailureData", FAILURE_ITEM), 404: PROBLEM},
    )
    def get(self, request, failure_id: int):
        failure = selectors.ingest_failure_get(actor=request.user, failure_id=failure_id)
        return ok(failure_item(failure))

    @extend_schema(
        operation_id="reports_failed_delete",
        parameters=[OpenApiParameter("failure_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: NULL_DATA, 403: PROBLEM, 404: PROBLEM},
    )
    def delete(self, request, failure_id: int):
        failure = selectors.ingest_failure_get(actor=request.user, failure_id=failure_id)
        services.ingest_failure_delete(actor=request.user, failure=failure)
        return ok(None)


class DmarcSummaryApi(MethodPermissionApi):
    """What the console's charts draw: messages per day passing and failing DMARC, the
    alignment breakdown, and the sending sources, failing ones first."""

    method_permissions = {"GET": Perm.INCOMING_REPORT_LIST}

    @extend_schema(
        operation_id="reports_dmarc_summary",
        parameters=[
            OpenApiParameter("domain", OpenApiTypes.STR, description="Domain name or id"),
            OpenApiParameter("from", OpenApiTypes.DATE, description="Periods from this day"),
        ],
        responses={200: envelope("DmarcSummary", DMARC_SUMMARY)},
    )
    def get(self, request):
        params = request.query_params
        domain = None
        if params.get("domain"):
            domain = domain_get(actor=request.user, name_or_id=params["domain"][:255])
        since = parse_day(params.get("from"), "from")
        return ok(selectors.dmarc_summary(actor=request.user, domain=domain, since=since))
