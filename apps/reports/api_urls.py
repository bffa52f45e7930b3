"""Incoming report API routes (management API paths, under /api/)."""

from django.urls import path

from apps.reports import api, queue_api

urlpatterns = [
    path("queue/reports", queue_api.QueuedReportListApi.as_view(), name="api-queue-reports"),
    path(
        "queue/reports/<int:report_id>",
        queue_api.QueuedReportDetailApi.as_view(),
        name="api-queue-reports-detail",
    ),
    path("reports/upload", api.ReportUploadApi.as_view(), name="api-reports-upload"),
    path("reports/failed", api.IngestFailureListApi.as_view(), name="api-reports-failed"),
    path(
        "reports/failed/<int:failure_id>",
        api.IngestFailureDetailApi.as_view(),
        name="api-reports-failed-detail",
    ),
    path("reports/dmarc", api.DmarcReportListApi.as_view(), name="api-reports-dmarc"),
    path("reports/dmarc/summary", api.DmarcSummaryApi.as_view(), name="api-reports-dmarc-summary"),
    path("reports/tls", api.TlsReportListApi.as_view(), name="api-reports-tls"),
    path("reports/arf", api.ArfReportListApi.as_view(), name="api-reports-arf"),
    path(
        "reports/dmarc/<int:report_id>",
        api.DmarcReportDetailApi.as_view(),
        name="api-reports-dmarc-detail",
    ),
    path(
        "reports/tls/<int:report_id>",
        api.TlsReportDetailApi.as_view(),
        name="api-reports-tls-detail",
    ),
    path(
        "reports/arf/<int:report_id>",
        api.ArfReportDetailApi.as_view(),
        name="api-reports-arf-detail",
    ),
]
