"""Mail store API: the management API's Fetch Blob by ID (/api/store/blobs/{blob_id}) and
store maintenance (purges, reindex, undelete, UID reset; see apps.store.maintenance)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from apps.accounts.permissions import Perm
from apps.store import maintenance, selectors
from mailadmin.api.pagination import paginate_request
from mailadmin.api.schema import NULL_DATA, PROBLEM, envelope
from mailadmin.api.views import MethodPermissionApi, ok
from mailadmin.core.models import TaskRun
from mailadmin.errors import ValidationFailed

MAX_BYTES_LIMIT = 10**18 - 1
LIMIT_PARAMETER = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 0, "maximum": MAX_BYTES_LIMIT},
    description="At most this many bytes (default: the whole blob)",
)


def parse_limit(raw: str | None) -> int | None:
    """`limit`: how many bytes at most (absent: all of them); a non-negative integer."""
    if raw is None or raw == "":
        return None
    try:
        value = int(raw) if len(raw) <= 24 else -1
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_BYTES_LIMIT:
        raise ValidationFailed("limit must be a whole number of bytes, 0 or more.", field="limit")
    return value


class BlobFetchApi(MethodPermissionApi):
    """The raw bytes of a blob (a stored message), not JSON: what a mail client would get."""

    method_permissions = {"GET": Perm.BLOB_FETCH}

    @extend_schema(
        operation_id="store_blob_get",
        parameters=[
            OpenApiParameter("blob_id", OpenApiTypes.STR, OpenApiParameter.PATH),
            LIMIT_PARAMETER,
        ],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: PROBLEM},
    )
    def get(self, request, blob_id: str):
        limit = parse_limit(request.query_params.get("limit"))
        data = selectors.blob_fetch(actor=request.user, blob_id=blob_id, limit=limit)
        response = HttpResponse(data, content_type="application/octet-stream")
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response


# --- store maintenance --------------------------------------------------------------------

ACCOUNT_PARAMETER = OpenApiParameter(
    "account_id",
    {"type": "string", "minLength": 1, "maxLength": 255},
    OpenApiParameter.PATH,
    description="The account's name or numeric id",
)
STARTED = (
    " Runs as a task on the maintenance queue; answers once it is queued (a run of the same"
    " kind under way is not started twice). Progress: the console's Store page."
)


class _RunStartApi(MethodPermissionApi):
    """GET starts a maintenance run (`start`, over what the caller reaches) and answers once
    it is queued; each endpoint names its permission, run and operation."""

    start: Callable[..., TaskRun]

    @extend_schema(responses={200: NULL_DATA, 403: PROBLEM})
    def get(self, request, **path):
        self.start(actor=request.user, **path)
        return ok(None)


def _run_schema(operation_id: str, description: str, **kwargs) -> Callable:
    """The schema of one endpoint starting a run: its operation and what the run does."""
    return extend_schema_view(
        get=extend_schema(operation_id=operation_id, description=description + STARTED, **kwargs)
    )


@_run_schema(
    "store_reindex",
    "Re-reads every message's blob (a tenant admin: the tenant's) and recomputes its size, "
    "From, Subject, Date and Message-ID.",
)
class FtsReindexApi(_RunStartApi):
    method_permissions = {"GET": Perm.FTS_REINDEX}
    start = staticmethod(maintenance.reindex_start)


@_run_schema(
    "store_purge_account",
    "Expunges the account's messages flagged \\Deleted and its Trash/Junk past their "
    "retention, and deletes for good what is past the undelete window.",
    parameters=[ACCOUNT_PARAMETER],
    responses={200: NULL_DATA, 403: PROBLEM, 404: PROBLEM},
)
class PurgeAccountApi(_RunStartApi):
    method_permissions = {"GET": Perm.PURGE_ACCOUNT}
    start = staticmethod(maintenance.purge_account_start)


@_run_schema(
    "store_purge_accounts", "Purge Account for every account (a tenant admin: the tenant's)."
)
class PurgeAllAccountsApi(_RunStartApi):
    method_permissions = {"GET": Perm.PURGE_ACCOUNT}
    start = staticmethod(maintenance.purge_accounts_start)


@_run_schema(
    "store_purge_blob",
    "Deletes blob files no message, deleted message, queued or quarantined message "
    "references, once older than the grace period (superadmins).",
)
class PurgeBlobStoreApi(_RunStartApi):
    method_permissions = {"GET": Perm.PURGE_BLOB_STORE}
    start = staticmethod(maintenance.purge_blob_start)


@_run_schema(
    "store_purge_data",
    "Deletes expired rows: sessions, OAuth codes and tokens, finished queue messages and "
    "task runs past their keep time, spent stream tokens past their expiry (superadmins).",
)
class PurgeDataStoreApi(_RunStartApi):
    method_permissions = {"GET": Perm.PURGE_DATA_STORE}
    start = staticmethod(maintenance.purge_data_start)


@_run_schema(
    "store_purge_in_memory",
    "Deletes expired cache entries and login counters (superadmins). The Bayes models have "
    "their own purges under /store/purge/in-memory/default/.",
)
class PurgeInMemoryStoreApi(_RunStartApi):
    method_permissions = {"GET": Perm.PURGE_IN_MEMORY_STORE}
    start = staticmethod(maintenance.purge_in_memory_start)


DELETED_ITEM = inline_serializer(
    name="DeletedMessage",
    fields={
        "id": serializers.IntegerField(),
        "hash": serializers.CharField(help_text="The blob, unpadded base64url SHA-256"),
        "collection": serializers.CharField(),
        "size": serializers.IntegerField(),
        "deletedAt": serializers.DateTimeField(),
        "expiresAt": serializers.DateTimeField(help_text="When it is deleted for good"),
        "folder": serializers.CharField(),
        "from": serializers.CharField(),
        "subject": serializers.CharField(),
        "receivedAt": serializers.DateTimeField(),
    },
)
UNDELETE_REQUEST = inline_serializer(
    name="UndeleteRequest",
    many=True,
    fields={
        "hash": serializers.CharField(),
        "collection": serializers.CharField(required=False),
        "restoreTime": serializers.DateTimeField(required=False),
        "cancelDeletion": serializers.DateTimeField(required=False),
    },
)
UNDELETE_RESULT = envelope(
    "UndeleteResult",
    serializers.ListField(child=serializers.DictField(child=serializers.CharField())),
)


class UndeleteApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.UNDELETE, "POST": Perm.UNDELETE}

    @extend_schema(
        operation_id="store_undelete_list",
        parameters=[
            ACCOUNT_PARAMETER,
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("limit", OpenApiTypes.INT),
        ],
        responses={
            200: envelope(
                "DeletedMessages",
                inline_serializer(
                    name="DeletedMessagePage",
                    fields={"items": DELETED_ITEM, "total": serializers.IntegerField()},
                ),
            ),
            403: PROBLEM,
            404: PROBLEM,
        },
        description="The account's deleted messages still in the undelete window.",
    )
    def get(self, request, account_id: str):
        listing = maintenance.deleted_list(actor=request.user, account_id=account_id)
        return ok(paginate_request(request, listing, maintenance.deleted_item))

    @extend_schema(
        operation_id="store_undelete",
        parameters=[ACCOUNT_PARAMETER],
        request=UNDELETE_REQUEST,
        responses={200: UNDELETE_RESULT, 400: PROBLEM, 403: PROBLEM, 404: PROBLEM},
        description=(
            "Restores each message (by blob hash; restoreTime picks the copy deleted in that "
            "second) into its folder with a new UID: per item {type: success} or "
            "{type: notFound}."
        ),
    )
    def post(self, request, account_id: str):
        # The account first: another tenant's is 404 whatever the body says.
        maintenance.account_for(actor=request.user, account_id=account_id, permission=Perm.UNDELETE)
        requests = maintenance.parse_undelete(request.data)
        return ok(
            maintenance.undelete(actor=request.user, account_id=account_id, requests=requests)
        )


class UidsResetApi(MethodPermissionApi):
    method_permissions = {"DELETE": Perm.IMAP_UID_RESET}

    @extend_schema(
        operation_id="store_uids_reset",
        parameters=[ACCOUNT_PARAMETER],
        responses={
            200: envelope("UidsReset", serializers.ListField(child=serializers.IntegerField())),
            403: PROBLEM,
            404: PROBLEM,
        },
        description=(
            "A new UIDVALIDITY for each of the account's folders and its messages renumbered "
            "from 1: answers [folders, messages]."
        ),
    )
    def delete(self, request, account_id: str):
        folders, messages = maintenance.uids_reset(actor=request.user, account_id=account_id)
        return ok([folders, messages])
