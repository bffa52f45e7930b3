"""The quarantine API on odd input: a 400/404 naming the problem, never a 500."""

from __future__ import annotations

import pytest

from tests.unit.spamfilter.test_quarantine import hold, jane, mailbox  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "query",
    ["mailbox=%00", "sender=%00x", "domain=%00", "kind=%00", "from=%00", "to=2026-13-45",
     "from=9999999999999", "page=%00", "limit=-1", "page=99999999999999999999", "kind=both"],
)  # fmt: skip
def test_odd_filters_are_400_never_500(api_a, jane, query):  # noqa: F811
    hold(jane)
    response = api_a.get(f"/api/spam-filter/quarantine?{query}")
    assert response.status_code in (200, 400), response.content


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": []}, {"ids": "1"}, {"ids": [0]}, {"ids": [-1]}, {"ids": [2**70]},
     {"ids": ["x"]}, {"ids": [None]}, {"ids": [1], "all": True}, [1, 2]],
)  # fmt: skip
@pytest.mark.parametrize("action", ["release", "delete"])
def test_odd_bulk_bodies_are_400(api_a, jane, body, action):  # noqa: F811
    response = api_a.post(f"/api/spam-filter/quarantine/{action}", body, format="json")
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("item", ["99999999999999999999", "0", "00001"])
def test_odd_item_ids_are_404(api_a, jane, item):  # noqa: F811
    for method, url in (
        ("get", f"/api/spam-filter/quarantine/{item}"),
        ("delete", f"/api/spam-filter/quarantine/{item}"),
        ("post", f"/api/spam-filter/quarantine/{item}/release"),
    ):
        response = getattr(api_a, method)(url)
        assert response.status_code == 404, (method, item, response.content)


@pytest.mark.parametrize("query", ["mailbox=%00", "from=x&to=y", "kind=z&from=x&to=y"])
def test_the_console_names_a_bad_filter_and_keeps_the_page(client, admin_a, jane, query):  # noqa: F811
    hold(jane)
    client.force_login(admin_a)
    response = client.get(f"/spam-filter/quarantine/?{query}")
    assert response.status_code in (200, 400, 422), response.status_code
    if response.status_code != 400:  # (a NUL in an HTML request: 400 before any view)
        assert "Invalid value for field" in response.content.decode()
