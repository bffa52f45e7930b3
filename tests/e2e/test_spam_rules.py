"""The rules editor in Chromium: a row saves in place (inputs tied to the row's form by
the form attribute), a bad score shows its message in the row, reset restores the file."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.config import cache
from apps.config.models import Setting
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login, mark_document, same_document

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROW = "#rule-SUBJ_ALL_CAPS"


@pytest.fixture
def page(browser_page, page_problems, live_server, superadmin):
    login(browser_page, live_server, superadmin.name, TEST_PASSWORD)
    browser_page.goto(f"{live_server.url}/spam-filter/rules/?q=SUBJ_ALL_CAPS")
    yield browser_page
    assert [p for p in page_problems if "422" not in p] == []


def test_it_saves_toggles_and_resets_a_rule_in_place(page):
    mark_document(page)
    page.fill(f"{ROW} input[name=score]", "6.5")
    page.uncheck(f"{ROW} input[name=enabled]")
    page.click(f"{ROW} button:has-text('Save')")
    expect(page.locator(f"{ROW} button:has-text('Reset')")).to_be_visible()
    assert dict(Setting.objects.values_list("key", "value")) == {
        "spam-filter.rule.SUBJ_ALL_CAPS.score": "6.5",
        "spam-filter.rule.SUBJ_ALL_CAPS.enabled": "false",
    }
    page.click(f"{ROW} button:has-text('Reset')")
    expect(page.locator(f"{ROW} button:has-text('Reset')")).to_have_count(0)
    expect(page.locator(f"{ROW} input[name=enabled]")).to_be_checked()
    assert not Setting.objects.exists()
    assert same_document(page)


def test_it_shows_a_bad_score_in_the_row(page):
    mark_document(page)
    page.fill(f"{ROW} input[name=score]", "lots")
    page.click(f"{ROW} button:has-text('Save')")
    expect(page.locator("#rule-SUBJ_ALL_CAPS-error")).to_have_text(
        "Enter a number from -100 to 100."
    )
    expect(page.locator(f"{ROW} input[name=score]")).to_have_value("lots")
    assert not Setting.objects.exists()
    assert same_document(page)


@pytest.fixture
def fresh_settings_cache():
    """The flush after this test leaves this process's copy of the store stale for up to
    MAILADMIN_SETTINGS_REFRESH_SECONDS: drop it, so the next test scans with the defaults."""
    yield
    cache.invalidate()


def test_a_threshold_saves_in_place_and_shows_a_refusal_in_its_row(
    page, settings, fresh_settings_cache
):
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 5.0
    settings.MAILADMIN_SPAM_THRESHOLD_REJECT = 15.0
    row = "#threshold-reject"
    mark_document(page)
    page.fill(f"{row} input[name=value]", "2")
    page.click(f"{row} button:has-text('Save')")
    expect(page.locator("#threshold-reject-error")).to_have_text(
        "Invalid spam-filter thresholds: reject (2) is below spam (5); thresholds that are on "
        "must keep the order spam <= quarantine <= reject <= discard (0 turns one off)"
    )
    expect(page.locator(f"{row} input[name=value]")).to_have_value("2")
    assert not Setting.objects.exists()
    page.fill(f"{row} input[name=value]", "12")
    page.click(f"{row} button:has-text('Save')")
    expect(page.locator(f"{row} td").nth(3)).to_have_text("12")  # in force
    expect(page.locator("#threshold-reject-error")).to_have_count(0)
    assert dict(Setting.objects.values_list("key", "value")) == {
        "spam-filter.threshold.reject": "12.0"
    }
    assert same_document(page)


def test_an_override_of_a_rule_gone_from_the_file_is_shown_and_deleted_in_place(
    page, fresh_settings_cache
):
    Setting.objects.create(key="spam-filter.rule.GONE_RULE.score", value="5.0")
    page.reload()
    mark_document(page)
    row = "#orphan-GONE_RULE"
    expect(page.locator(row)).to_contain_text("GONE_RULE")
    page.click(f"{row} button:has-text('Delete')")
    expect(page.locator(row)).to_have_count(0)
    assert not Setting.objects.exists()
    assert same_document(page)
