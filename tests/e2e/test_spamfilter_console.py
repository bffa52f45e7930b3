"""The spam filter console pages in Chromium: a mailbox's lists change in place, and each
form's refusal (422) shows its message where the field is, without leaving the page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.domains import mailbox_services
from apps.spamfilter.models import SenderListEntry
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login, mark_document, same_document

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def jane(make_principal, tenant_a, admin_a):
    domain = make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")
    values = {"display_name": "Jane Doe", "password": "Secret123!@#", "size": 1024}
    return mailbox_services.mailbox_create(actor=admin_a, domain=domain, name="jane", values=values)


@pytest.fixture
def page(browser_page, page_problems, live_server, admin_a, settings):
    settings.REDIS_URL = ""
    login(browser_page, live_server, "admin-a", TEST_PASSWORD)
    expect(browser_page.locator("h1")).to_have_text("Dashboard")
    yield browser_page
    assert [p for p in page_problems if "422" not in p] == []


def test_a_mailboxs_lists_change_in_place(page, live_server, jane):
    page.goto(f"{live_server.url}/domains/{jane.domain_id}/mailboxes/{jane.pk}/")
    page.click("#mailbox-spam-tab")
    expect(page.locator("h1")).to_have_text("Spam: jane@a.example")
    mark_document(page)
    page.fill("#id_blacklist-address", "abc")
    page.click("#add-blacklist button[type=submit]")
    expect(page.locator("#id_blacklist-address_error")).to_have_text("invalid email address: abc")
    page.fill("#id_blacklist-address", "spam.example")
    page.click("#add-blacklist button[type=submit]")
    expect(page.locator("#spam-list-blacklist code")).to_have_text("spam.example")
    assert SenderListEntry.objects.filter(list="blacklist", value="spam.example").exists()
    page.click("#spam-list-blacklist button[aria-label='Remove spam.example']")
    expect(page.locator("#spam-list-blacklist code")).to_have_count(0)
    assert not SenderListEntry.objects.exists()
    page.select_option("#id_filterlevel", "exclusive")
    page.fill("#id_quarantineowner", "abc")
    page.click("#settings-submit")
    expect(page.locator("#id_quarantineowner_error")).to_have_text("invalid email address: abc")
    page.fill("#id_quarantineowner", "boss@a.example")
    page.click("#settings-submit")
    expect(page.locator("#settings-saved")).to_be_visible()
    assert same_document(page)


def test_the_troubleshooter_and_training_show_their_errors_in_place(page, live_server, user_a):
    page.goto(f"{live_server.url}/spam-filter/dmarc/")
    mark_document(page)
    page.fill("#id_remote_ip", "123")
    page.click("#dmarc-submit")
    expect(page.locator("#id_remote_ip_error")).to_have_text("Enter a valid IPv4 or IPv6 address.")
    expect(page.locator("#id_body_error")).to_have_text("Paste the message to check.")
    assert same_document(page)
    page.goto(f"{live_server.url}/spam-filter/bayes/?account=user-a")
    mark_document(page)
    page.click("#train-submit")
    expect(page.locator("#id_message_error")).to_have_text("The message is empty.")
    assert same_document(page)


def test_a_paste_too_big_to_train_asks_for_the_file_in_place(page, live_server, user_a):
    """The train form is multipart (it takes a file), whose text Django caps at 2.5 MB: the
    answer was a 400 and "request failed", now the message beside the box."""
    page.goto(f"{live_server.url}/spam-filter/bayes/?account=user-a")
    line = "Replica watches: 10% off at <https://shop.example/?a=1&b=2> today!\n"
    message = "From: a@example.org\nSubject: Cheap\n\n" + line * (3_000_000 // len(line))
    page.locator("#id_message").evaluate("(box, text) => { box.value = text; }", message)
    mark_document(page)
    page.click("#train-submit")
    expect(page.locator("#id_message_error")).to_have_text(
        "The pasted message is larger than 2.5 MB: upload it as a file instead."
    )
    expect(page.locator("#id_account")).to_have_value("user-a")
    assert same_document(page)
