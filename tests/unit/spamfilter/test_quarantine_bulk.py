"""A bulk action does what its confirmation page said: "Release 2 quarantined messages?"
releases those, not also the spam that arrived while the page was open."""

from __future__ import annotations

import re

import pytest

from apps.spamfilter.models import QuarantinedMessage
from apps.store.models import Message
from tests.unit.spamfilter import test_quarantine
from tests.unit.spamfilter.test_quarantine import hold

jane, mailbox = test_quarantine.jane, test_quarantine.mailbox  # its fixtures
pytestmark = pytest.mark.django_db


def _confirmation_form(page: str) -> dict[str, list[str]]:
    """The hidden fields of the confirmation page's form, as the browser posts them."""
    form = page[page.index('id="quarantine-confirm"') :]
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form):
        fields.setdefault(name, []).append(value)
    return fields


@pytest.mark.parametrize("action", ["release", "delete"])
def test_all_matching_acts_on_what_was_confirmed_not_on_what_arrived_since(
    client, admin_a, jane, action
):
    confirmed = [
        hold(jane, "Spam 1", sender="x@spam.test"),
        hold(jane, "Spam 2", sender="x@spam.test"),
    ]
    client.force_login(admin_a)
    data = {"action": action, "scope": "all", "sender": "spam.test"}
    page = client.post("/spam-filter/quarantine/bulk/", data).content.decode()
    assert f"{action.title()} 2 quarantined messages?" in page
    arrived = hold(jane, "Arrived meanwhile", sender="x@spam.test")
    response = client.post("/spam-filter/quarantine/bulk/", _confirmation_form(page), follow=True)
    assert f"{'Released' if action == 'release' else 'Deleted'} 2 message(s)." in (
        response.content.decode()
    )
    assert list(QuarantinedMessage.objects.all()) == [arrived]
    released = set(Message.objects.values_list("subject", flat=True))
    assert released == ({"Spam 1", "Spam 2"} if action == "release" else set())
    assert {c.pk for c in confirmed}.isdisjoint(
        QuarantinedMessage.objects.values_list("pk", flat=True)
    )


def test_a_forged_bound_is_ignored_when_it_is_not_an_id(client, admin_a, jane):
    hold(jane, "Spam", sender="x@spam.test")
    client.force_login(admin_a)
    data = {"action": "delete", "scope": "all", "confirm": "yes", "upto": "x²"}
    assert client.post("/spam-filter/quarantine/bulk/", data).status_code == 302
    assert not QuarantinedMessage.objects.exists()
