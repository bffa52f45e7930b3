"""Quarantine API (/api/spam-filter/quarantine): list with the console's filters, one
item, release to the INBOX, delete; release and delete also in bulk by ids.

Each operation needs its quarantine permission (`quarantine-list`, `-release`,
`-delete`: every item in the caller's reach) or `manage-own-quarantine` (the items of
the caller's own mailbox's quarantine only; another's is 404, ignored in bulk)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers

from apps.accounts.permissions import Perm
from apps.spamfilter import quarantine
from apps.spamfilter.models import QuarantinedMessage
from mailadmin.api.pagination import paginate_request
from mailadmin.api.schema import PAGE_PARAMETERS, PROBLEM, envelope
from mailadmin.api.serializers import StrictSerializer
from mailadmin.api.views import MethodPermissionApi, ok

FILTER_PARAMETERS = [
    OpenApiParameter(
        "mailbox", OpenApiTypes.STR, description="A recipient (or owner) address, or account"
    ),
    OpenApiParameter("domain", OpenApiTypes.STR, description="The recipient's domain"),
    OpenApiParameter("kind", OpenApiTypes.STR, enum=["mailbox", "domain"]),
    OpenApiParameter("sender", OpenApiTypes.STR, description="Part of the sender or From"),
    OpenApiParameter(
        "from", OpenApiTypes.DATETIME, description="Held at or after (a day: from its start)"
    ),
    OpenApiParameter(
        "to", OpenApiTypes.DATETIME, description="Held at or before (a day: to its end)"
    ),
]
ID_PARAMETER = OpenApiParameter("item_id", OpenApiTypes.INT, OpenApiParameter.PATH)

ITEM = inline_serializer(
    name="QuarantinedMessage",
    fields={
        "id": serializers.IntegerField(),
        "kind": serializers.ChoiceField(choices=["mailbox", "domain"]),
        "domain": serializers.CharField(),
        "owner": serializers.CharField(),
        "recipient": serializers.CharField(),
        "sender": serializers.CharField(),
        "from": serializers.CharField(),
        "subject": serializers.CharField(),
        "date": serializers.DateTimeField(allow_null=True),
        "receivedAt": serializers.DateTimeField(),
        "size": serializers.IntegerField(),
        "score": serializers.FloatField(),
        "tags": serializers.DictField(child=serializers.FloatField()),
        "reasons": serializers.ListField(child=serializers.CharField()),
    },
)
LIST = envelope(
    "QuarantinePage",
    inline_serializer(
        name="QuarantinePageData",
        fields={"items": serializers.ListField(child=ITEM), "total": serializers.IntegerField()},
    ),
)
RESULT = envelope(
    "QuarantineActionResult",
    inline_serializer(
        name="QuarantineActionResultData",
        fields={
            "done": serializers.IntegerField(),
            "failed": serializers.ListField(child=serializers.CharField()),
        },
    ),
)


def item_data(item: QuarantinedMessage) -> dict:
    return {
        "id": item.pk,
        "kind": item.kind,
        "domain": item.domain,
        "owner": item.owner,
        "recipient": item.recipient,
        "sender": item.sender,
        "from": item.from_address,
        "subject": item.subject,
        "date": item.date.isoformat() if item.date else None,
        "receivedAt": item.received_at.isoformat(),
        "size": item.size,
        "score": item.score,
        "tags": item.tags,
        "reasons": item.reasons,
    }


def _result(result: quarantine.ActionResult):
    return ok({"done": result.done, "failed": result.failed})


class QuarantineIds(StrictSerializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=quarantine.MAX_BULK,
    )


READ = (Perm.QUARANTINE_LIST, Perm.MANAGE_OWN_QUARANTINE)
RELEASE = (Perm.QUARANTINE_RELEASE, Perm.MANAGE_OWN_QUARANTINE)
DELETE = (Perm.QUARANTINE_DELETE, Perm.MANAGE_OWN_QUARANTINE)


class QuarantineListApi(MethodPermissionApi):
    method_permissions = {"GET": READ}

    @extend_schema(
        operation_id="quarantine_list",
        parameters=[*PAGE_PARAMETERS, *FILTER_PARAMETERS],
        responses={200: LIST, 400: PROBLEM, 403: PROBLEM},
    )
    def get(self, request):
        filters = quarantine.parse_filters(request.query_params)
        items = quarantine.quarantine_list(actor=request.user, filters=filters)
        return ok(paginate_request(request, items, item_data))


class QuarantineDetailApi(MethodPermissionApi):
    method_permissions = {"GET": READ, "DELETE": DELETE}

    @extend_schema(
        operation_id="quarantine_get",
        parameters=[ID_PARAMETER],
        responses={200: envelope("QuarantinedMessageData", ITEM), 403: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, item_id: int):
        return ok(item_data(quarantine.quarantine_get(actor=request.user, item_id=item_id)))

    @extend_schema(
        operation_id="quarantine_delete",
        parameters=[ID_PARAMETER],
        responses={200: RESULT, 403: PROBLEM, 404: PROBLEM},
    )
    def delete(self, request, item_id: int):
        actor = request.user
        item = quarantine.quarantine_get(actor=actor, item_id=item_id, permission=DELETE[0])
        items = quarantine.quarantine_visible(actor, DELETE[0]).filter(pk=item.pk)
        return _result(quarantine.quarantine_delete(actor=actor, items=items))


class QuarantineReleaseApi(MethodPermissionApi):
    method_permissions = {"POST": RELEASE}

    @extend_schema(
        operation_id="quarantine_release",
        parameters=[ID_PARAMETER],
        description="Deliver the item to its recipient's INBOX and train the account's "
        "Bayes model as ham. `failed` names why when it could not be delivered.",
        request=None,
        responses={200: RESULT, 403: PROBLEM, 404: PROBLEM},
    )
    def post(self, request, item_id: int):
        actor = request.user
        item = quarantine.quarantine_get(actor=actor, item_id=item_id, permission=RELEASE[0])
        return _result(quarantine.quarantine_release_item(actor=actor, item=item))


class _BulkApi(MethodPermissionApi):
    def _items(self, request, permission: str):
        body = QuarantineIds(data=request.data)
        body.is_valid(raise_exception=True)
        ids = body.validated_data["ids"]
        return quarantine.quarantine_visible(request.user, permission).filter(pk__in=ids)


class QuarantineBulkReleaseApi(_BulkApi):
    method_permissions = {"POST": RELEASE}

    @extend_schema(
        operation_id="quarantine_release_many",
        description="Release the items with these ids (ids the caller can't see are ignored).",
        request=QuarantineIds,
        responses={200: RESULT, 400: PROBLEM, 403: PROBLEM},
    )
    def post(self, request):
        items = self._items(request, RELEASE[0])
        return _result(quarantine.quarantine_release(actor=request.user, items=items))


class QuarantineBulkDeleteApi(_BulkApi):
    method_permissions = {"POST": DELETE}

    @extend_schema(
        operation_id="quarantine_delete_many",
        description="Delete the items with these ids (ids the caller can't see are ignored).",
        request=QuarantineIds,
        responses={200: RESULT, 400: PROBLEM, 403: PROBLEM},
    )
    def post(self, request):
        items = self._items(request, DELETE[0])
        return _result(quarantine.quarantine_delete(actor=request.user, items=items))
