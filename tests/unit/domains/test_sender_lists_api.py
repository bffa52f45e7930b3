"""A mailbox's spam lists over the provisioning API beyond the spec's examples: CIDR
networks and IPv6, normalised entries, audit, isolation between tenants, permissions, and
an index whose query count does not grow with its length."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Principal
from apps.spamfilter.models import MailboxSpamSetting, SenderListEntry
from apps.spamfilter.sender_lists import sender_status
from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db

GOOD = {"displayName": "Alex Smith", "password": "Secret123!@#", "size": "2048"}


def _url(tenant, list_name="blacklist", entry=None, name="alex.smith", domain="a.example"):
    url = f"/api/customers/{tenant.pk}/domains/{domain}/mailboxes/{name}/spam/{list_name}"
    return url if entry is None else f"{url}/{entry}"


@pytest.fixture
def alex(api_a, tenant_a, domain_a):
    url = f"/api/customers/{tenant_a.pk}/domains/a.example/mailboxes/alex.smith"
    response = api_a.post(url, GOOD)
    assert response.status_code == 200, response.content
    return response


@pytest.mark.parametrize(
    ("list_name", "entry", "stored_on", "stored"),
    [
        ("blacklist", "Anyone@Spam.COM", "blacklist", "anyone@spam.com"),
        ("blacklist", "Spam.COM", "blacklist", "spam.com"),
        ("safelist", "bücher.example", "safelist", "xn--bcher-kva.example"),
        ("ipblacklist", "10.1.2.0/24", "ipblacklist", "10.1.2.0/24"),
        ("ipblacklist", "10.1.2.3/24", "ipblacklist", "10.1.2.0/24"),
        ("ipsafelist", "2001:DB8::1", "ipsafelist", "2001:db8::1"),
        ("ipsafelist", "2001:db8::/32", "ipsafelist", "2001:db8::/32"),
        ("safelist", "192.0.2.7", "ipsafelist", "192.0.2.7"),  # the spec's own example
        ("ipblacklist", "::ffff:192.0.2.7", "ipblacklist", "192.0.2.7"),  # IPv4-mapped
        ("ipsafelist", "::FFFF:192.0.2.0/120", "ipsafelist", "192.0.2.0/24"),
    ],
)
def test_it_stores_entries_normalised(api_a, tenant_a, alex, list_name, entry, stored_on, stored):
    response = api_a.post(_url(tenant_a, list_name, entry))
    assert response.status_code == 200, response.content
    assert response.json()["data"] == {"name": stored_on, "entries": [stored]}
    [row] = SenderListEntry.objects.all()
    assert (row.list, row.value, row.tenant_id) == (stored_on, stored, tenant_a.pk)
    assert row.mailbox.name == "alex.smith@a.example"
    again = api_a.post(_url(tenant_a, list_name, entry))  # already there: nothing changes
    assert again.status_code == 200
    assert SenderListEntry.objects.count() == 1
    assert api_a.get(_url(tenant_a, stored_on)).json()["data"]["entries"] == [stored]
    assert AuditEvent.objects.filter(action="spam-filter.list-add").count() == 1
    response = api_a.delete(_url(tenant_a, list_name, entry))
    assert response.status_code == 200, response.content
    assert response.json()["data"]["entries"] == []
    assert not SenderListEntry.objects.exists()
    assert AuditEvent.objects.filter(action="spam-filter.list-remove").count() == 1


def test_an_ipv4_mapped_entry_matches_the_ipv4_peer_it_names(api_a, tenant_a, alex):
    """The scan sees a peer a [::] listener reports as ::ffff:192.0.2.7 as 192.0.2.7: the
    entry kept the IPv6 form, accepted, listed, and never matched anything."""
    assert api_a.post(_url(tenant_a, "ipblacklist", "::ffff:192.0.2.7")).status_code == 200
    mailbox = SenderListEntry.objects.get().mailbox
    status = sender_status(
        mailbox_ids=[mailbox.pk], senders=[], remote_ip="192.0.2.7", authenticated=()
    )
    assert status == {mailbox.pk: "block"}


def test_an_ipv4_mapped_entry_stored_in_its_ipv6_form_can_be_removed(api_a, tenant_a, alex):
    """Such entries were kept as ::ffff:102:304; the list shows that text, and deleting it
    by that text must still find the row (it now parses to 1.2.3.4)."""
    mailbox = Principal.objects.get(name="alex.smith@a.example")
    SenderListEntry.objects.create(
        mailbox=mailbox, tenant_id=tenant_a.pk, list="ipblacklist", value="::ffff:102:304"
    )
    assert api_a.get(_url(tenant_a, "ipblacklist")).json()["data"]["entries"] == ["::ffff:102:304"]
    response = api_a.delete(_url(tenant_a, "ipblacklist", "::ffff:102:304"))
    assert response.status_code == 200, response.content
    assert response.json()["data"] == {"name": "ipblacklist", "entries": []}
    assert not SenderListEntry.objects.exists()


@pytest.mark.parametrize("list_name", ["ipsafelist", "safelist"])
def test_an_entry_with_a_zone_id_stored_before_they_were_refused_can_be_removed(
    api_a, tenant_a, alex, list_name
):
    mailbox = Principal.objects.get(name="alex.smith@a.example")
    SenderListEntry.objects.create(
        mailbox=mailbox, tenant_id=tenant_a.pk, list="ipsafelist", value="fe80::1%eth0"
    )
    response = api_a.delete(_url(tenant_a, list_name, "fe80::1%25eth0"))
    assert response.status_code == 200, response.content
    assert response.json()["data"] == {"name": "ipsafelist", "entries": []}
    assert not SenderListEntry.objects.exists()
    response = api_a.delete(_url(tenant_a, list_name, "fe80::1%25eth0"))  # gone: refused
    assert response.status_code == 400
    assert response.json()["detail"].startswith("invalid ")


@pytest.mark.parametrize(
    ("list_name", "entry", "message"),
    [
        ("blacklist", "a.example", "Adding a.example would blacklist the current domain"),
        ("blacklist", "abc", "invalid email address: abc"),
        ("safelist", "a b@c.example", "invalid email address: a b@c.example"),
        ("ipsafelist", "spam.com", "invalid ip address: spam.com"),
        ("ipblacklist", "10.0.0.0/33", "invalid ip address: 10.0.0.0/33"),
        # An IPv6 zone id names an interface of this host: it was stored (a long one: 500).
        ("ipblacklist", "fe80::1%25eth0", "invalid ip address: fe80::1%eth0"),
        ("ipsafelist", "fe80::1%25" + "x" * 400, "invalid ip address: fe80::1%" + "x" * 400),
    ],
)
def test_it_refuses_bad_entries_with_the_spec_words(
    api_a, tenant_a, alex, list_name, entry, message
):
    response = api_a.post(_url(tenant_a, list_name, entry))
    assert response.status_code == 400
    assert response.json()["detail"] == message
    assert not SenderListEntry.objects.exists()


def test_an_unknown_list_is_not_found(api_a, tenant_a, alex):
    assert api_a.get(_url(tenant_a, "greylist")).status_code == 404
    assert api_a.post(_url(tenant_a, "greylist", "x@y.example")).status_code == 404


def test_a_tenant_admin_cannot_reach_another_tenants_lists(
    api_a, api_b, tenant_a, tenant_b, alex, domain_b
):
    assert api_a.post(_url(tenant_a, "blacklist", "spam.com")).status_code == 200
    for method, url in [
        ("get", _url(tenant_a)),
        ("post", _url(tenant_a, "blacklist", "friend.example")),
        ("delete", _url(tenant_a, "blacklist", "spam.com")),
    ]:
        response = getattr(api_b, method)(url)
        assert response.status_code == 404, (method, url)
        assert response.json()["detail"] == f"Customer {tenant_a.pk} not found"
    # Its own customer path with the other tenant's domain: not found either.
    response = api_b.get(_url(tenant_b))
    assert response.status_code == 404
    assert response.json()["detail"] == "a.example not found"
    assert list(SenderListEntry.objects.values_list("value", flat=True)) == ["spam.com"]


def test_a_mailbox_that_is_not_there_has_the_spec_message(api_a, tenant_a, domain_a):
    response = api_a.get(_url(tenant_a, name="Nobody"))
    assert response.status_code == 404
    assert response.json()["detail"] == "No user with the email address nobody@a.example exists"


@pytest.mark.parametrize(
    ("method", "entry", "permission"),
    [("get", None, "principal-get"), ("post", "x.example", "principal-update"),
     ("delete", "x.example", "principal-update")],
)  # fmt: skip
def test_it_needs_the_principal_permissions(
    method, entry, permission, api_client_for, make_principal, tenant_a, alex
):
    user = make_principal(tenant=tenant_a, roles=["user"])
    response = getattr(api_client_for(user), method)(_url(tenant_a, "blacklist", entry))
    assert response.status_code == 403
    assert response.json()["permission"] == permission
    assert not SenderListEntry.objects.exists()


def test_the_index_costs_a_fixed_number_of_queries(api_a, tenant_a, alex):
    api_a.post(_url(tenant_a, "ipblacklist", "10.0.0.1"))
    with CaptureQueriesContext(connection) as one:
        api_a.get(_url(tenant_a, "ipblacklist"))
    for index in range(2, 12):
        api_a.post(_url(tenant_a, "ipblacklist", f"10.0.0.{index}"))
    with CaptureQueriesContext(connection) as eleven:
        response = api_a.get(_url(tenant_a, "ipblacklist"))
    assert len(response.json()["data"]["entries"]) == 11
    assert len(eleven.captured_queries) == len(one.captured_queries)


# --- spam settings ------------------------------------------------------------------------


def _settings_url(tenant, name="alex.smith", domain="a.example"):
    return f"/api/customers/{tenant.pk}/domains/{domain}/mailboxes/{name}/spam/settings"


def test_spam_settings_default_and_change(api_a, tenant_a, alex):
    url = _settings_url(tenant_a)
    assert api_a.get(url).json()["data"] == {
        "filterlevel": "on",
        "sendtodomainquarantine": False,
        "quarantineowner": "",
    }
    body = {"filterlevel": "Exclusive", "sendtodomainquarantine": True,
            "quarantineowner": "Boss@A.example"}  # fmt: skip
    response = api_a.put(url, body, format="json")
    assert response.status_code == 200, response.content
    expected = {"filterlevel": "exclusive", "sendtodomainquarantine": True,
                "quarantineowner": "boss@a.example"}  # fmt: skip
    assert response.json()["data"] == expected
    assert api_a.get(url).json()["data"] == expected
    # "off" forces the domain quarantine off, whatever is asked.
    response = api_a.put(url, {"filterlevel": "off", "sendtodomainquarantine": "true"})
    assert response.json()["data"]["sendtodomainquarantine"] is False
    assert MailboxSpamSetting.objects.get().filter_level == "off"
    assert AuditEvent.objects.filter(action="spam-filter.settings").count() == 2


def test_a_huge_unicode_quarantine_owner_is_refused_at_once(api_a, tenant_a, alex):
    """The IDNA codec takes quadratic time: 12,000 CJK characters took some 20 s of a
    worker, a body of 2.5 MB of them hours. No domain is longer than 253 characters."""
    owner = "boss@" + "".join(chr(0x4E00 + i) for i in range(12_000)) + ".example"
    started = time.perf_counter()
    response = api_a.put(
        _settings_url(tenant_a), {"filterlevel": "off", "quarantineowner": owner}, format="json"
    )
    assert time.perf_counter() - started < 3
    assert response.status_code == 400
    assert response.json()["detail"] == f"invalid email address: {owner}"
    assert not MailboxSpamSetting.objects.exists()


def test_spam_settings_messages(api_a, tenant_a, domain_a):
    assert api_a.get(_settings_url(tenant_a)).json()["detail"] == "Mailbox not found"
    response = api_a.put(_settings_url(tenant_a), {"filterlevel": "on"})
    assert response.json()["detail"] == "No user with the email address alex.smith@a.example exists"


def test_spam_settings_of_another_tenant_are_out_of_reach(
    api_b, api_client_for, make_principal, tenant_a, alex
):
    for method in ("get", "put"):
        response = getattr(api_b, method)(_settings_url(tenant_a), {"filterlevel": "off"})
        assert response.status_code == 404
        assert response.json()["detail"] == f"Customer {tenant_a.pk} not found"
    user = make_principal(tenant=tenant_a, roles=["user"])
    response = api_client_for(user).put(_settings_url(tenant_a), {"filterlevel": "off"})
    assert response.status_code == 403
    assert response.json()["permission"] == "principal-update"
    assert not MailboxSpamSetting.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_entry_added_meanwhile_by_another_request_is_not_a_500(api_a, tenant_a, alex):
    """Two adds of one entry at once (a double submit): the second finds no row, then
    meets the first's on the unique index. It answers as for an entry already there."""
    mailbox = Principal.objects.get(name="alex.smith@a.example")
    inserted, release = threading.Event(), threading.Event()

    def add_first() -> None:
        try:
            with transaction.atomic():
                SenderListEntry.objects.create(
                    mailbox=mailbox, tenant_id=tenant_a.pk, list="blacklist", value="spam.com"
                )
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    first = threading.Thread(target=add_first)
    first.start()
    assert inserted.wait(10)
    threading.Timer(0.5, release.set).start()  # commits while the API's insert waits on it
    response = api_a.post(_url(tenant_a, "blacklist", "spam.com"))
    first.join(10)
    assert response.status_code == 200, response.content
    assert response.json()["data"] == {"name": "blacklist", "entries": ["spam.com"]}
    assert SenderListEntry.objects.count() == 1
