"""Queue API routes (management API paths, under /api/)."""

from django.urls import path

from apps.queue import api, fetch_api

urlpatterns = [
    path("queue/messages", api.QueueMessageListApi.as_view(), name="api-queue-messages"),
    path(
        "queue/messages/<str:message_id>",
        api.QueueMessageDetailApi.as_view(),
        name="api-queue-message",
    ),
    path("queue/status", api.QueueStatusApi.as_view(), name="api-queue-status"),
    path("queue/status/stop", api.QueueStopApi.as_view(), name="api-queue-stop"),
    path("queue/status/start", api.QueueStartApi.as_view(), name="api-queue-start"),
    # Fetch jobs (specs/mailbox-fetch-api.txt)
    path("fetch/mailboxes", fetch_api.FetchJobListApi.as_view(), name="api-fetch-jobs"),
    path("fetch/mailboxes/<str:uuid>", fetch_api.FetchJobDetailApi.as_view(), name="api-fetch-job"),
    path(
        "fetch/mailboxes/<str:uuid>/validate",
        fetch_api.FetchJobValidateApi.as_view(),
        name="api-fetch-job-validate",
    ),
    path(
        "fetch/mailboxes/<str:uuid>/run",
        fetch_api.FetchJobRunApi.as_view(),
        name="api-fetch-job-run",
    ),
    path(
        "fetch/monitoring/failed",
        fetch_api.FetchFailedListApi.as_view(),
        name="api-fetch-monitoring-failed",
    ),
    path(
        "fetch/monitoring/successful",
        fetch_api.FetchSuccessfulListApi.as_view(),
        name="api-fetch-monitoring-successful",
    ),
    path("fetch/monitoring/info", fetch_api.FetchInfoListApi.as_view(), name="api-fetch-info"),
    path(
        "fetch/monitoring/<int:entry_id>",
        fetch_api.FetchEntryDetailApi.as_view(),
        name="api-fetch-monitoring-entry",
    ),
]
