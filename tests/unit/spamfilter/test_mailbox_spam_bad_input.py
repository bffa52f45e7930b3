"""A mailbox's Spam tab on odd input: the form's message (422), never a 500."""

from __future__ import annotations

import pytest

from apps.spamfilter.models import SenderListEntry
from tests.unit.spamfilter import test_console_views
from tests.unit.spamfilter.test_console_views import _spam_url

pytestmark = pytest.mark.django_db
console, domain_a, jane = (
    test_console_views.console,
    test_console_views.domain_a,
    test_console_views.jane,
)


@pytest.mark.parametrize("value", ["spam\x00.com", "\x00", "1.2.3.4\x00", "a@b\x00.example"])
@pytest.mark.parametrize("list_name", ["blacklist", "ipsafelist"])
def test_removing_a_value_with_a_nul_answers_422(console, admin_a, jane, list_name, value):
    SenderListEntry.objects.create(mailbox=jane.principal, tenant_id=jane.principal.tenant_id,
                                   list="blacklist", value="spam.com")  # fmt: skip
    client = console(admin_a)
    response = client.post(
        _spam_url(jane, f"{list_name}/remove/"), {"value": value}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert "invalid" in response.content.decode()
    assert SenderListEntry.objects.count() == 1
