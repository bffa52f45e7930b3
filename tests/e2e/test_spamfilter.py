"""The classify tester in Chromium: the result and the form's errors appear in place."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login, mark_document, same_document

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser_page, page_problems, live_server, user_a, dns_server):
    login(browser_page, live_server, user_a.name, TEST_PASSWORD)
    browser_page.goto(f"{live_server.url}/spam-filter/")
    yield browser_page
    assert [p for p in page_problems if "422" not in p] == []


def test_it_shows_the_score_and_tags_in_place(page):
    page.fill(
        "#id_message",
        "From: a@example.org\nTo: b@example.org\nSubject: WIN A FREE CRUISE TODAY\n\nClick!\n",
    )
    page.fill("#id_remote_ip", "192.0.2.1")
    mark_document(page)
    page.click("#classify-submit")
    expect(page.locator("#classify-tags")).to_contain_text("SUBJ_ALL_CAPS")
    expect(page.locator("#classify-headers")).to_contain_text("X-Spam-Status:")
    assert same_document(page)


def test_it_shows_what_is_wrong_with_the_form(page):
    page.fill("#id_remote_ip", "not-an-ip")
    mark_document(page)
    page.click("#classify-submit")
    expect(page.locator("#id_message_error")).to_have_text("Paste the message to classify.")
    expect(page.locator("#id_remote_ip_error")).to_have_text("Enter a valid IPv4 or IPv6 address.")
    assert same_document(page)


def test_a_pasted_message_over_djangos_body_limit_is_classified_in_place(page):
    """3 MB pasted (over Django's 2.5 MB body limit once url-encoded): the result, not a
    "request failed" for a 400 answered before the form could speak."""
    line = "Replica watches: 10% off at <https://shop.example/?a=1&b=2> today!\n"
    message = "From: a@example.org\nTo: b@example.org\nSubject: WIN A FREE CRUISE TODAY\n\n"
    message += line * (3_000_000 // len(line))
    # As a paste does it: fill() types into the box and takes minutes for 3 MB.
    page.locator("#id_message").evaluate("(box, text) => { box.value = text; }", message)
    mark_document(page)
    page.click("#classify-submit")
    expect(page.locator("#classify-tags")).to_contain_text("SUBJ_ALL_CAPS", timeout=30_000)
    assert same_document(page)
