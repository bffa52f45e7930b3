"""Console pages of the store: a mailbox's messages by folder, one message raw."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.store import services
from tests.conftest import TEST_PASSWORD
from tests.unit.store.conftest import message


@pytest.fixture
def console_for(db):
    def make(principal) -> Client:
        client = Client()
        client.force_login(principal)
        return client

    return make


@pytest.fixture
def console_a(console_for, admin_a):
    return console_for(admin_a)


@pytest.fixture
def jane(make_mailbox):
    return make_mailbox("jane", quota=10 * 1024 * 1024)


def test_it_lists_the_inbox_newest_first(console_a, jane):
    services.deliver(jane, message("older"))
    services.deliver(jane, message("=?utf-8?q?newer_=C3=BC?="))
    services.deliver(jane, message("junk mail"), folder="Junk")

    response = console_a.get(f"/store/mailboxes/{jane.pk}/")

    page = response.content.decode()
    assert response.status_code == 200
    assert page.index(">newer ü<") < page.index(">older<")
    assert "junk mail" not in page
    assert "Sender Person" in page and "sender@remote.example" in page
    assert "2026-11-30 09:00" in page
    for name in ("INBOX", "Junk", "Sent", "Trash"):
        assert f">{name}</a>" in page
    assert "of 10.0\xa0MB" in page


def test_it_switches_folders(console_a, jane):
    services.deliver(jane, message("in inbox"))
    services.deliver(jane, message("in junk"), folder="Junk")

    page = console_a.get(f"/store/mailboxes/{jane.pk}/?folder=Junk").content.decode()

    assert "in junk" in page and "in inbox" not in page
    assert 'aria-current="page">Junk<' in page


def test_it_says_when_nothing_was_delivered(console_a, jane):
    page = console_a.get(f"/store/mailboxes/{jane.pk}/").content.decode()
    assert "No mail has been delivered to this mailbox yet." in page


def test_it_pages_with_a_constant_number_of_queries(console_a, jane, django_assert_max_num_queries):
    for i in range(123):
        services.deliver(jane, message(f"many {i}"))
    with django_assert_max_num_queries(14) as before:
        response = console_a.get(f"/store/mailboxes/{jane.pk}/?page=2")
    page = response.content.decode()
    assert "Page 2 of 3" in page and "123 in all" in page
    assert page.count('href="/store/messages/') == 50

    for i in range(200):
        services.deliver(jane, message(f"more {i}"))
    with django_assert_max_num_queries(len(before.captured_queries)):
        response = console_a.get(f"/store/mailboxes/{jane.pk}/?page=5")
    page = response.content.decode()
    assert "Page 5 of 7" in page and "323 in all" in page
    assert page.count('href="/store/messages/') == 50


def test_it_answers_the_table_alone_to_htmx(console_a, jane):
    services.deliver(jane, message())
    response = console_a.get(f"/store/mailboxes/{jane.pk}/", HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="message-table">')
    assert "<h1>" not in page


def test_it_shows_a_message_raw_and_escaped(console_a, jane):
    stored = services.deliver(jane, message("<script>alert(1)</script>", body="<b>hi</b>\r\n"))

    response = console_a.get(f"/store/messages/{stored.pk}/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;hi&lt;/b&gt;" in page
    assert stored.blob_hash in page


def test_it_downloads_the_message_as_stored(console_a, jane):
    data = message("download me")
    stored = services.deliver(jane, data)

    response = console_a.get(f"/store/messages/{stored.pk}/raw")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["Content-Type"] == "application/octet-stream"
    assert f'filename="message-{stored.pk}.eml"' in response["Content-Disposition"]


def test_it_links_the_messages_from_an_accounts_page(console_a, jane, make_principal, tenant_a):
    page = console_a.get(f"/accounts/{jane.pk}/").content.decode()
    assert f'href="/store/mailboxes/{jane.pk}/"' in page

    group = make_principal(tenant=tenant_a, roles=(), type="group", password="")
    assert "/store/mailboxes/" not in console_a.get(f"/accounts/{group.pk}/").content.decode()
    assert console_a.get(f"/store/mailboxes/{group.pk}/").status_code == 404


def test_it_hides_another_tenants_mailbox_and_messages(console_for, admin_b, jane):
    stored = services.deliver(jane, message())
    outsider = console_for(admin_b)

    assert outsider.get(f"/store/mailboxes/{jane.pk}/").status_code == 404
    assert outsider.get(f"/store/messages/{stored.pk}/").status_code == 404
    assert outsider.get(f"/store/messages/{stored.pk}/raw").status_code == 404


def test_it_needs_blob_fetch_to_read_mail(console_for, user_a, jane, make_principal, tenant_a):
    stored = services.deliver(jane, message())
    member = console_for(user_a)
    for url in (
        f"/store/mailboxes/{jane.pk}/",
        f"/store/messages/{stored.pk}/",
        f"/store/messages/{stored.pk}/raw",
    ):
        assert member.get(url).status_code == 403

    reader = make_principal(
        tenant=tenant_a, roles=(), enabled_permissions=["principal-get"], password=TEST_PASSWORD
    )
    assert console_for(reader).get(f"/store/mailboxes/{jane.pk}/").status_code == 403
    assert (
        "/store/mailboxes/" not in console_for(reader).get(f"/accounts/{jane.pk}/").content.decode()
    )


def test_it_lets_a_superadmin_read_any_tenants_mail(console_for, superadmin, jane):
    stored = services.deliver(jane, message("seen by root"))
    root = console_for(superadmin)
    assert "seen by root" in root.get(f"/store/mailboxes/{jane.pk}/").content.decode()
    assert root.get(f"/store/messages/{stored.pk}/").status_code == 200
