"""The quarantine page in Chromium: a held message is listed; ticking it and releasing it
(after the confirmation page) takes it off the list and puts it in the mailbox's INBOX."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.domains import mailbox_services
from apps.spamfilter import quarantine
from apps.spamfilter.models import QuarantinedMessage
from apps.store import blobs
from apps.store.models import Message
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HELD = (
    b"X-Spam-Status: Yes, score=9.00\r\nFrom: spammer@junk.test\r\nTo: jane@a.example\r\n"
    b"Subject: Cheap watches\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <held-1@junk.test>\r\n\r\nBuy now.\r\n"
)


@pytest.fixture
def jane(make_principal, tenant_a, admin_a):
    domain = make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")
    values = {"display_name": "Jane Doe", "password": "Secret123!@#", "size": 1024 * 1024}
    profile = mailbox_services.mailbox_create(
        actor=admin_a, domain=domain, name="jane", values=values
    )
    return profile.principal


@pytest.fixture
def held(jane) -> QuarantinedMessage:
    [item] = quarantine.quarantine_store(
        mailboxes=[jane],
        data=HELD,
        sender="spammer@junk.test",
        score=9.0,
        tags={"MISSING_MID": 2.5, "BAYES_SPAM": 5.1},
        reasons=["spam score 9.00 reaches the quarantine threshold 6"],
        peer_ip="192.0.2.7",
        queue_id="ABC123",
    )
    return item


@pytest.fixture
def page(browser_page, page_problems, live_server, admin_a, settings):
    settings.REDIS_URL = ""  # the release trains Bayes: in the database
    login(browser_page, live_server, "admin-a", TEST_PASSWORD)
    expect(browser_page.locator("h1")).to_have_text("Dashboard")
    yield browser_page
    assert page_problems == []


def test_a_ticked_message_is_released_to_the_inbox_after_confirmation(
    page, live_server, jane, held
):
    page.goto(f"{live_server.url}/spam-filter/quarantine/")
    expect(page.locator("h1")).to_have_text("Quarantine")
    rows = page.locator("#quarantine-items tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Cheap watches")
    expect(rows.first).to_contain_text("jane@a.example")

    page.check(f"input[name=ids][value='{held.pk}']")
    page.click("#bulk-release")
    expect(page.locator("h1")).to_have_text("Release 1 quarantined message?")
    assert QuarantinedMessage.objects.filter(pk=held.pk).exists()  # nothing done yet
    assert not Message.objects.filter(principal=jane).exists()

    page.click("#confirm-action")
    expect(page.locator("h1")).to_have_text("Quarantine")
    expect(page.get_by_text("Released 1 message(s).")).to_be_visible()
    expect(page.locator("#quarantine-items tbody")).to_contain_text("No messages in quarantine")
    expect(page.get_by_text("Cheap watches")).to_have_count(0)

    assert not QuarantinedMessage.objects.exists()
    [delivered] = Message.objects.filter(principal=jane)
    assert delivered.folder.name == "INBOX"
    assert delivered.subject == "Cheap watches"
    assert blobs.read(delivered.blob_hash) == blobs.read(held.blob_hash)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_filters_wrap_and_show_what_each_box_is_for(page, live_server, held, width):
    """The filter bar is the console's shared .filter-bar; without a layout of its own Pico
    squeezed its seven controls into one joined row (placeholders cut to a letter, "Filter" one
    letter a line) that was 714 px wide on a phone. Every page's filter bar is also measured in
    tests/e2e/test_layout.py."""
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_server.url}/spam-filter/quarantine/")
    filters = page.locator("#quarantine-filters")
    assert filters.evaluate("f => getComputedStyle(f).flexWrap") == "wrap"
    for control in filters.locator("input, select").all():
        box = control.bounding_box()
        assert box is not None and box["width"] >= 150, control.evaluate("e => e.outerHTML")
    button = filters.get_by_role("button", name="Filter").bounding_box()
    box = filters.locator("input[name=sender]").bounding_box()
    assert button is not None and box is not None
    assert button["height"] <= box["height"] + 1  # "Filter" on one line
    assert page.evaluate("document.documentElement.scrollWidth") <= width
