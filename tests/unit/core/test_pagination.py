import pytest

from apps.accounts.models import Principal
from mailadmin.api.pagination import paginate

pytestmark = pytest.mark.django_db


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


def test_it_rejects_a_limit_over_the_maximum(api_client_for, admin_a):
    from rest_framework.exceptions import ValidationError
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from mailadmin.api.pagination import paginate_request

    request = Request(APIRequestFactory().get("/x", {"limit": "5000"}))
    with pytest.raises(ValidationError) as excinfo:
        paginate_request(request, Principal.objects.all(), str)
    assert "limit" in excinfo.value.detail
