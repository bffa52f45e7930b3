"""The Django admin writes settings through the store's service: checked, audited."""

from __future__ import annotations

import pytest

from apps.config.models import Setting
from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db
BASE = "/admin/config/setting/"


@pytest.fixture
def operator(client, superadmin):
    client.force_login(superadmin)
    return client


def test_it_adds_and_deletes_through_the_service(operator):
    response = operator.post(BASE + "add/", {"key": "spam-filter.rule.MISSING_DATE.score",
                                             "value": "2.50"})  # fmt: skip
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Setting.objects.get().value == "2.5"
    assert AuditEvent.objects.get(action="settings.update").interface == "admin"
    url = f"{BASE}spam-filter.rule.MISSING_DATE.score/delete/"
    assert operator.post(url, {"post": "yes"}).status_code == 302
    assert not Setting.objects.exists()


def test_it_shows_the_services_refusal_on_the_form(operator):
    response = operator.post(BASE + "add/", {"key": "spam-filter.rule.MISSING_DATE.score",
                                             "value": "lots"})  # fmt: skip
    assert response.status_code == 200
    assert "lots is not a number from -100 to 100" in response.content.decode()
    assert not Setting.objects.exists()
    response = operator.post(BASE + "add/", {"key": "a..b", "value": "1"})
    assert "Invalid key: a..b" in response.content.decode()
