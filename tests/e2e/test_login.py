import pytest
from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_it_logs_in_through_the_form_and_shows_the_dashboard(browser_page, live_server, admin_a):
    page = browser_page
    page.goto(live_server.url + "/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")
    login(page, live_server, "admin-a", TEST_PASSWORD)
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#user-menu")).to_have_text("admin-a")
    accounts = page.locator("#dashboard-counts article", has_text="Accounts")
    expect(accounts.locator(".count")).to_have_text("1")  # admin-a itself


def test_it_refuses_a_wrong_password(browser_page, live_server, admin_a):
    page = browser_page
    login(page, live_server, "admin-a", "not the password")
    expect(page.locator("h1")).to_have_text("Log in")
    expect(page.locator(".errorlist")).to_be_visible()
