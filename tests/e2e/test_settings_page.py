"""The settings page in Chromium: a refused value shows its message in place, a row edits
in place."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.config.models import Setting
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser_page, page_problems, live_server, superadmin):
    login(browser_page, live_server, superadmin.name, TEST_PASSWORD)
    browser_page.goto(f"{live_server.url}/settings/")
    yield browser_page
    assert [p for p in page_problems if "422" not in p] == []


def test_it_shows_a_refused_value_and_edits_a_row(page):
    page.fill("#id_key", "spam-filter.rule.MISSING_DATE.score")
    page.fill("#id_value", "lots")
    page.click("#setting-add-submit")
    expect(page.locator("#id_value_error")).to_have_text(
        "Invalid value for spam-filter.rule.MISSING_DATE.score: lots is not a number from "
        "-100 to 100"
    )
    page.fill("#id_value", "2.5")
    page.click("#setting-add-submit")
    row = page.locator("tr", has_text="spam-filter.rule.MISSING_DATE.score")
    expect(row.locator("input[name=value]")).to_have_value("2.5")
    row.locator("input[name=value]").fill("3")
    row.locator("button:has-text('Save')").click()
    expect(row.locator("small[role=status]")).to_have_text("Saved.")
    assert Setting.objects.get().value == "3.0"
