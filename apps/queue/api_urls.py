"""Queue API routes (management API paths, under /api/)."""

from django.urls import path

from apps.queue import api

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
]
