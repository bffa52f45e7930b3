"""A person changes their own password in Chromium and logs in with the new one."""

import time

import pyotp
import pytest
from playwright.sync_api import expect

from apps.accounts.auth.totp import totp_enable
from apps.accounts.auth.twofactor import new_secret
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
NEW = "a-much-better-passphrase"


def log_out(page) -> None:
    page.click("#user-menu")
    page.click("text=Log out")
    expect(page.locator("h1")).to_have_text("Log in")


def test_it_changes_the_password_from_the_own_account_menu(browser_page, live_server, user_a):
    page = browser_page
    login(page, live_server, "user-a", TEST_PASSWORD)
    page.click("#user-menu")
    page.click("#menu-password")
    expect(page.locator("h1")).to_have_text("Change password")
    expect(page.locator("#id_code")).to_have_count(0)

    page.fill("#id_current", TEST_PASSWORD)
    page.fill("#id_new", NEW)
    page.fill("#id_new2", "something else entirely")
    page.click("#change-password")
    expect(page.locator("#id_new2_error")).to_have_text("The two new passwords don't match.")

    page.fill("#id_current", TEST_PASSWORD)
    page.fill("#id_new", NEW)
    page.fill("#id_new2", NEW)
    page.click("#change-password")
    expect(page.locator("#messages")).to_contain_text("Your password was changed.")
    expect(page.locator("#user-menu")).to_have_text("user-a")  # still logged in

    log_out(page)
    login(page, live_server, "user-a", TEST_PASSWORD)
    expect(page.locator(".errorlist")).to_contain_text("Please enter a correct name")
    login(page, live_server, "user-a", NEW)
    expect(page.locator("h1")).to_have_text("Dashboard")


def test_it_asks_for_the_code_when_2fa_is_on(browser_page, live_server, user_a):
    secret = new_secret()
    totp_enable(actor=user_a, secret=secret, code=None)
    page = browser_page
    login(page, live_server, "user-a", TEST_PASSWORD)
    page.fill("#id_code", pyotp.TOTP(secret).now())
    page.click("#verify-code")
    expect(page.locator("h1")).to_have_text("Dashboard")

    page.goto(f"{live_server.url}/account/password/")
    page.fill("#id_current", TEST_PASSWORD)
    page.fill("#id_new", NEW)
    page.fill("#id_new2", NEW)
    page.fill("#id_code", "000000")
    page.click("#change-password")
    expect(page.locator("#id_code_error")).to_have_text("Invalid authentication code.")

    page.fill("#id_current", TEST_PASSWORD)
    page.fill("#id_new", NEW)
    page.fill("#id_new2", NEW)
    # The login spent this step's code; the next step's is within the allowed drift.
    page.fill("#id_code", pyotp.TOTP(secret).at(time.time() + 30))
    page.click("#change-password")
    expect(page.locator("#messages")).to_contain_text("Your password was changed.")
