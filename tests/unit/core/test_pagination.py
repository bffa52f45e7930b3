"""The one paging helper: page numbers up to a depth, cursors beyond, capped totals."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.accounts.models import Principal
from mailadmin.api import pagination
from mailadmin.api.pagination import LAST, InvalidCursor, paginate, paginate_query, paginate_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenants(make_tenant) -> list[Principal]:
    """25 tenants t00..t24, created one second apart in reverse name order, so that the
    name and creation orders differ; two share a timestamp (ties break by id)."""
    now = timezone.now()
    rows = [make_tenant(f"t{i:02}") for i in range(25)]
    for i, tenant in enumerate(rows):
        tenant.created_at = now - timedelta(seconds=i if i != 7 else 6)
        tenant.save(update_fields=["created_at"])
    return rows


def names(page) -> list[str]:
    return [p.name for p in page.items]


def _request(**query) -> Request:
    return Request(APIRequestFactory().get("/x", query))


def test_it_caps_the_total_instead_of_counting_everything(make_tenant):
    for _ in range(30):
        make_tenant()
    queryset = Principal.objects.filter(type="tenant").order_by("pk")
    page = paginate(queryset, page=2, limit=10, max_total=25)
    assert len(page.items) == 10
    assert page.total == 25
    assert page.total_capped is True


def test_it_counts_a_small_result_without_a_count_query(make_tenant, django_assert_num_queries):
    make_tenant()
    queryset = Principal.objects.filter(type="tenant")
    with django_assert_num_queries(1):
        page = paginate(queryset, page=1, limit=10, max_total=100)
    assert page.total == 1


def test_it_knows_the_total_from_a_short_last_page_without_counting(
    tenants, django_assert_num_queries
):
    queryset = Principal.objects.filter(type="tenant").order_by("name")
    with django_assert_num_queries(2):  # the page's ids, their rows: no count
        page = paginate(queryset, page=3, limit=10)
    assert names(page) == [f"t{i:02}" for i in range(20, 25)]
    assert (page.total, page.total_capped, page.next_cursor) == (25, False, None)


def test_it_rejects_a_limit_over_the_maximum(api_client_for, admin_a):
    with pytest.raises(ValidationError) as excinfo:
        paginate_request(_request(limit="5000"), Principal.objects.all(), str)
    assert "limit" in excinfo.value.detail


def test_it_walks_every_row_once_by_cursor_forwards_and_backwards(tenants):
    queryset = Principal.objects.filter(type="tenant").order_by("name")
    seen, page = [], paginate(queryset, page=1, limit=7)
    while True:
        seen += names(page)
        if page.next_cursor is None:
            break
        page = paginate(queryset, limit=7, cursor=page.next_cursor)
        assert page.number is None
    assert seen == [f"t{i:02}" for i in range(25)]
    back = []
    while page.previous_cursor is not None:
        page = paginate(queryset, limit=7, cursor=page.previous_cursor)
        back = names(page) + back
    assert back + [f"t{i:02}" for i in range(21, 25)] == seen


def test_it_pages_a_descending_order_with_ties_broken_by_id(tenants):
    queryset = Principal.objects.filter(type="tenant").order_by("-created_at", "-pk")
    everything = list(queryset.values_list("name", flat=True))
    seen, cursor = [], None
    for _ in range(5):
        page = paginate(queryset, limit=6, cursor=cursor) if cursor else paginate(queryset, limit=6)
        seen += names(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything


def test_it_answers_the_last_page_by_cursor(tenants):
    queryset = Principal.objects.filter(type="tenant").order_by("name")
    page = paginate(queryset, limit=10, cursor=LAST)
    assert names(page) == [f"t{i:02}" for i in range(15, 25)]
    assert page.next_cursor is None
    earlier = paginate(queryset, limit=10, cursor=page.previous_cursor)
    assert names(earlier) == [f"t{i:02}" for i in range(5, 15)]


def test_it_skips_rows_by_key_alone_on_a_later_page(tenants, django_assert_num_queries):
    queryset = Principal.objects.filter(type="tenant").order_by("name")
    with django_assert_num_queries(3):  # the page's ids, their rows, and the count
        page = paginate(queryset, page=2, limit=10)
    assert names(page) == [f"t{i:02}" for i in range(10, 20)]
    assert page.total == 25


def test_it_refuses_offsets_deeper_than_the_cap(tenants, monkeypatch):
    monkeypatch.setattr(pagination, "MAX_OFFSET", 10)
    queryset = Principal.objects.filter(type="tenant").order_by("name")
    assert names(paginate(queryset, page=2, limit=10))[0] == "t10"
    with pytest.raises(InvalidCursor):
        paginate(queryset, page=3, limit=10)


def test_the_api_names_page_when_it_is_too_deep(admin_a):
    with pytest.raises(ValidationError) as excinfo:
        paginate_request(_request(page="20000", limit="50"), Principal.objects.all(), str)
    assert "page" in excinfo.value.detail
    assert "cursor" in str(excinfo.value.detail["page"][0])


@pytest.mark.parametrize(
    "cursor",
    ["!!!", "bm90LWpzb24", "eyJvIjoibmFtZSIsImQiOiJhZnRlciIsImsiOlsxLDJdfQ"],
    ids=["not-base64", "not-json", "wrong-length"],
)
def test_the_api_names_cursor_when_it_is_bad(admin_a, cursor):
    queryset = Principal.objects.order_by("name")
    with pytest.raises(ValidationError) as excinfo:
        paginate_request(_request(cursor=cursor), queryset, str)
    assert "cursor" in excinfo.value.detail


def test_a_cursor_of_another_ordering_is_refused(tenants):
    by_name = Principal.objects.filter(type="tenant").order_by("name")
    cursor = paginate(by_name, limit=5).next_cursor
    with pytest.raises(InvalidCursor, match="another ordering"):
        paginate(by_name.order_by("-created_at", "-pk"), limit=5, cursor=cursor)


def test_an_ordering_cursors_cannot_seek_pages_by_number_only(tenants):
    # Mixed directions: no row comparison can seek it.
    queryset = Principal.objects.filter(type="tenant").order_by("description", "-name")
    page = paginate(queryset, page=3, limit=10)
    assert (len(page.items), page.next_cursor, page.seekable) == (5, None, False)
    with pytest.raises(InvalidCursor):
        paginate(queryset, limit=10, cursor=LAST)


def test_the_api_body_carries_the_cursors(tenants):
    queryset = Principal.objects.filter(type="tenant").order_by("name")
    body = paginate_request(_request(limit="10"), queryset, lambda p: p.name)
    assert body["items"][0] == "t00" and body["total"] == 25
    assert body["previous"] is None
    following = paginate_request(_request(limit="10", cursor=body["next"]), queryset, str)
    assert following["items"][0] == "t10"


def test_html_links_keep_the_other_parameters_and_turn_to_cursors_past_the_cap(
    tenants, monkeypatch
):
    monkeypatch.setattr(pagination, "MAX_OFFSET", 10)
    queryset = Principal.objects.filter(type="tenant").order_by("name")
    nav = paginate_query({"q": "x", "page": "2"}, queryset, limit=10)
    assert nav.previous == "?q=x&page=1" and nav.first == "?q=x&page=1"
    assert nav.next.startswith("?q=x&cursor=")  # page 3 would be 20 rows deep
    assert nav.last == f"?q=x&cursor={LAST}"
    assert nav.label == "Page 2 of 3" and nav.total == "25 in all"
    later = paginate_query({"q": "x", "cursor": nav.next.split("cursor=")[1]}, queryset, limit=10)
    assert names(later.page)[0] == "t20" and later.label == "Last page"
    assert later.next is None and later.previous.startswith("?q=x&cursor=")


def test_html_paging_shows_the_first_page_for_a_bad_page_or_cursor(tenants):
    queryset = Principal.objects.filter(type="tenant").order_by("name")
    for query in ({"page": "99999999999999999999"}, {"page": "-1"}, {"cursor": "garbage"}):
        nav = paginate_query(query, queryset, limit=10)
        assert names(nav.page)[0] == "t00", query
