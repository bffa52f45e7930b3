"""Queue control API (management API paths under /api/queue/): list, details, reschedule,
cancel, status, stop and start."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers

from apps.accounts.permissions import Perm
from apps.queue import selectors, services
from apps.queue.serializers import MESSAGE, message_item, parse_filters
from mailadmin.api.pagination import paginate_request
from mailadmin.api.schema import PAGE_PARAMETERS, PROBLEM, envelope
from mailadmin.api.views import MethodPermissionApi, ok

FILTER_PARAMETERS = [
    OpenApiParameter(
        "text", OpenApiTypes.STR, description="Part of a recipient, sender or subject"
    ),
    OpenApiParameter("filter", OpenApiTypes.STR, description="Same as text"),
    OpenApiParameter("values", OpenApiTypes.STR, description="Same as text"),
    OpenApiParameter("recipient", OpenApiTypes.STR, description="A recipient address"),
    OpenApiParameter("sender", OpenApiTypes.STR, description='Return path ("<>": null sender)'),
    OpenApiParameter("domain", OpenApiTypes.STR, description="A destination domain"),
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        enum=list(selectors.STATUSES),
        description="The message's status",
    ),
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="Queued at or after"),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="Queued at or before"),
]
ID_PARAMETER = OpenApiParameter("message_id", OpenApiTypes.STR, OpenApiParameter.PATH)
RECIPIENT_PARAMETER = OpenApiParameter(
    "recipient", OpenApiTypes.STR, description="Cancel only this recipient"
)
BOOLEAN = envelope("QueueBoolean", serializers.BooleanField())
LIST = envelope(
    "QueuedMessagePage",
    inline_serializer(
        name="QueuedMessagePageData",
        fields={
            "items": serializers.ListField(child=MESSAGE),
            "total": serializers.IntegerField(),
            "status": serializers.BooleanField(help_text="Whether the queue is running"),
        },
    ),
)


def _matching(request):
    return selectors.message_list(actor=request.user, filters=parse_filters(request.query_params))


class QueueMessageListApi(MethodPermissionApi):
    method_permissions = {
        "GET": Perm.MESSAGE_QUEUE_LIST,
        "PATCH": Perm.MESSAGE_QUEUE_UPDATE,
        "DELETE": Perm.MESSAGE_QUEUE_DELETE,
    }

    @extend_schema(
        operation_id="queue_messages_list",
        parameters=[*PAGE_PARAMETERS, *FILTER_PARAMETERS],
        responses={200: LIST, 400: PROBLEM, 403: PROBLEM},
    )
    def get(self, request):
        messages = selectors.with_details(_matching(request))
        page = paginate_request(request, messages, message_item)
        page["status"] = selectors.queue_running()
        return ok(page)

    @extend_schema(
        operation_id="queue_messages_reschedule",
        parameters=FILTER_PARAMETERS,
        description="Every scheduled message matching the filters becomes due now.",
        request=None,
        responses={200: BOOLEAN, 400: PROBLEM, 403: PROBLEM},
    )
    def patch(self, request):
        services.queue_reschedule(actor=request.user, messages=_matching(request))
        return ok(True)

    @extend_schema(
        operation_id="queue_messages_cancel",
        parameters=FILTER_PARAMETERS,
        description=(
            "Cancel delivery of every message matching the filters: each recipient still "
            "scheduled is marked cancelled (with who did it), never deleted."
        ),
        responses={200: BOOLEAN, 400: PROBLEM, 403: PROBLEM},
    )
    def delete(self, request):
        services.queue_cancel(actor=request.user, messages=_matching(request))
        return ok(True)


class QueueMessageDetailApi(MethodPermissionApi):
    method_permissions = {
        "GET": Perm.MESSAGE_QUEUE_GET,
        "PATCH": Perm.MESSAGE_QUEUE_UPDATE,
        "DELETE": Perm.MESSAGE_QUEUE_DELETE,
    }

    @extend_schema(
        operation_id="queue_message_get",
        parameters=[ID_PARAMETER],
        responses={200: envelope("QueuedMessageDetails", MESSAGE), 403: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, message_id: str):
        return ok(message_item(selectors.message_get(actor=request.user, message_id=message_id)))

    @extend_schema(
        operation_id="queue_message_reschedule",
        parameters=[ID_PARAMETER],
        description="The message's scheduled domains become due now.",
        request=None,
        responses={200: BOOLEAN, 403: PROBLEM, 404: PROBLEM},
    )
    def patch(self, request, message_id: str):
        message = selectors.message_get(actor=request.user, message_id=message_id)
        services.queue_reschedule(
            actor=request.user,
            messages=selectors.message_scoped(actor=request.user, message=message),
        )
        return ok(True)

    @extend_schema(
        operation_id="queue_message_cancel",
        parameters=[ID_PARAMETER, RECIPIENT_PARAMETER],
        description="Cancel the message's scheduled recipients, or only ?recipient=.",
        responses={200: BOOLEAN, 403: PROBLEM, 404: PROBLEM},
    )
    def delete(self, request, message_id: str):
        message = selectors.message_get(actor=request.user, message_id=message_id)
        address = (request.query_params.get("recipient") or "").strip()[:320] or None
        cancelled = services.queue_cancel(
            actor=request.user,
            messages=selectors.message_scoped(actor=request.user, message=message),
            address=address,
        )
        return ok(cancelled > 0)


class QueueStatusApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.MESSAGE_QUEUE_LIST}

    @extend_schema(
        operation_id="queue_status",
        description="true while the queue is running (deliveries start), false when stopped.",
        responses={200: BOOLEAN, 403: PROBLEM},
    )
    def get(self, request):
        return ok(selectors.queue_running())


class QueueStopApi(MethodPermissionApi):
    method_permissions = {"PATCH": Perm.QUEUE_CONTROL}

    @extend_schema(
        operation_id="queue_stop",
        description="No new delivery starts (those under way finish). Answers whether the "
        "queue was running.",
        request=None,
        responses={200: BOOLEAN, 403: PROBLEM},
    )
    def patch(self, request):
        return ok(services.queue_stop(actor=request.user))


class QueueStartApi(MethodPermissionApi):
    method_permissions = {"PATCH": Perm.QUEUE_CONTROL}

    @extend_schema(
        operation_id="queue_start",
        description="Deliveries start again; everything due is handed to workers. Answers "
        "whether the queue was running.",
        request=None,
        responses={200: BOOLEAN, 403: PROBLEM},
    )
    def patch(self, request):
        return ok(services.queue_start(actor=request.user))
