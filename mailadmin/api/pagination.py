"""page/limit pagination with a capped total: no unbounded COUNT(*) on huge tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
DEFAULT_MAX_TOTAL = 10_000
# Input bounds: a page or a counting cap past these is a 400 naming the field, never an
# integer the database can't hold (OverflowError) or a COUNT nobody needs.
MAX_PAGE = 1_000_000
MAX_MAX_TOTAL = 1_000_000


class PageParams(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)

    def get_fields(self):
        fields = super().get_fields()
        # The query parameter is spelled max-total, and errors must name it so.
        fields["max-total"] = serializers.IntegerField(
            source="max_total", min_value=1, max_value=MAX_MAX_TOTAL, default=DEFAULT_MAX_TOTAL
        )
        return fields

    def to_internal_value(self, data):
        data = dict(data.items()) if hasattr(data, "items") else data
        return super().to_internal_value(
            {k: v for k, v in data.items() if k in {"page", "limit", "max-total"}}
        )


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    total: int
    total_capped: bool


def paginate(queryset: QuerySet, *, page: int, limit: int, max_total: int) -> Page:
    """Slice one page; count at most max_total rows (COUNT over a LIMITed subquery)."""
    offset = (page - 1) * limit
    items = list(queryset[offset : offset + limit])
    if page == 1 and len(items) < limit:
        total = len(items)  # the whole result is on this page: no COUNT needed
    else:
        total = queryset.order_by()[:max_total].count()
    return Page(items=items, total=total, total_capped=total >= max_total)


def paginate_request(
    request, queryset: QuerySet, serialize: Callable[[Any], Any]
) -> dict[str, Any]:
    params = PageParams(data=request.query_params)
    params.is_valid(raise_exception=True)
    page = paginate(queryset, **params.validated_data)
    return {"items": [serialize(item) for item in page.items], "total": page.total}
