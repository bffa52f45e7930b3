"""Mail store API: the management API's Fetch Blob by ID (/api/store/blobs/{blob_id})."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from apps.accounts.permissions import Perm
from apps.store import selectors
from mailadmin.api.schema import PROBLEM
from mailadmin.api.views import MethodPermissionApi
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
