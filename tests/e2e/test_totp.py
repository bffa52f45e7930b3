"""A person turns on TOTP in Chromium and logs in with a code computed from the shown key."""

import pyotp
import pytest
from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_it_enrols_totp_and_logs_in_with_a_code(browser_page, live_server, user_a):
    page = browser_page
    login(page, live_server, "user-a", TEST_PASSWORD)
    expect(page.locator("h1")).to_have_text("Dashboard")

    page.goto(f"{live_server.url}/account/security/")
    expect(page.locator("#otp-status")).to_contain_text("Off.")
    page.click("#enable-totp")
    expect(page.locator("h1")).to_have_text("Set up two-factor authentication")
    expect(page.locator(".totp-qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    assert len(secret) == 32

    page.fill("#id_code", pyotp.TOTP(secret).now())
    page.fill("#id_password", TEST_PASSWORD)
    page.click("#confirm-totp")
    expect(page.locator("h1")).to_have_text("Recovery codes")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.click("#recovery-codes-done")
    expect(page.locator("#otp-status")).to_contain_text("On.")

    page.click("#user-menu")
    page.click("text=Log out")
    expect(page.locator("h1")).to_have_text("Log in")

    login(page, live_server, "user-a", TEST_PASSWORD)
    expect(page.locator("h1")).to_have_text("Two-factor authentication")
    page.fill("#id_code", pyotp.TOTP(secret).now())
    page.click("#verify-code")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#user-menu")).to_have_text("user-a")


def test_a_wrong_code_does_not_log_in(browser_page, live_server, user_a):
    from apps.accounts.auth.totp import totp_enable
    from apps.accounts.auth.twofactor import new_secret

    secret = new_secret()
    totp_enable(actor=user_a, secret=secret, code=pyotp.TOTP(secret).now())
    page = browser_page
    login(page, live_server, "user-a", TEST_PASSWORD)
    page.fill("#id_code", "000000")
    page.click("#verify-code")
    expect(page.locator("#code-errors")).to_have_text("Invalid authentication code.")
    expect(page.locator("h1")).to_have_text("Two-factor authentication")
