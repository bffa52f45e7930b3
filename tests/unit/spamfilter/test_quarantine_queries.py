"""The quarantine list costs the same number of queries however many items match, with
every filter given, for a tenant admin and for a user reading their own quarantine."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.spamfilter.models import QuarantinedMessage
from tests.unit.spamfilter import test_quarantine
from tests.unit.spamfilter.test_quarantine import _copies, hold

jane, mailbox = test_quarantine.jane, test_quarantine.mailbox  # its fixtures
pytestmark = pytest.mark.django_db
FILTERS = {"mailbox": "jane", "domain": "example.test", "kind": "mailbox", "sender": "junk",
           "from": "2000-01-01", "to": "2999-12-31"}  # fmt: skip


@pytest.mark.parametrize("who", ["admin", "owner"])
@pytest.mark.parametrize("filters", [{}, FILTERS], ids=["unfiltered", "every-filter"])
def test_a_page_costs_the_same_for_few_and_many_items(client, admin_a, jane, who, filters):
    client.force_login(admin_a if who == "admin" else jane)
    _copies(hold(jane), 160)  # page 2 is full: the total is counted
    client.get("/spam-filter/quarantine/", filters)  # warm the session and caches
    with CaptureQueriesContext(connection) as few:
        response = client.get("/spam-filter/quarantine/", {**filters, "page": 2})
    assert "Page 2 of 4" in response.content.decode()
    _copies(QuarantinedMessage.objects.first(), 300)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/spam-filter/quarantine/", {**filters, "page": 3})
    assert "Page 3 of 10" in response.content.decode()
    assert len(many.captured_queries) == len(few.captured_queries) <= 9
