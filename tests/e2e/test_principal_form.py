"""The account form in Chromium: quota in GB, addresses picked from the tenant's domains
(rows added and removed in place), and the address bar on the new account's page."""

import re

import pytest
from playwright.sync_api import expect

from apps.accounts.models import Principal
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def domains(make_principal, tenant_a):
    for name in ("a.example", "a2.example"):
        make_principal(tenant=tenant_a, roles=(), name=name, type="domain", password="")


def test_it_creates_an_account_with_a_quota_and_picked_addresses(
    browser_page, live_server, admin_a, domains
):
    page = browser_page
    login(page, live_server, "admin-a", TEST_PASSWORD)
    page.goto(f"{live_server.url}/accounts/?type=individual")
    page.click("#new-principal")
    expect(page.locator("h1")).to_have_text("New account")

    page.fill("#id_name", "john")
    page.get_by_label("Quota").fill("2.5")
    page.select_option("select[name=quota_1]", "GB")
    rows = page.locator("[data-address-row]")
    expect(rows).to_have_count(1)
    rows.nth(0).locator("input").fill("john")
    rows.nth(0).locator("select").select_option("a.example")
    page.click("[data-add-address]")
    expect(rows).to_have_count(2)
    expect(rows.nth(1).locator("input")).to_be_focused()
    rows.nth(1).locator("input").fill("typo")
    page.click("[data-add-address]")
    rows.nth(2).locator("input").fill("j.doe")
    rows.nth(2).locator("select").select_option("a2.example")
    rows.nth(1).locator("[data-remove-address]").click()
    expect(rows).to_have_count(2)
    expect(rows.nth(1).locator("input")).to_have_attribute(
        "aria-label", "Address 2: the part before the @"
    )

    page.click("#principal-form button[type=submit]")
    john_url = re.compile(r"/accounts/\d+/$")
    expect(page).to_have_url(john_url)  # the address bar follows to the new account
    expect(page.locator("h1")).to_contain_text("john")
    expect(page.locator("#messages")).to_contain_text("Created account john.")
    expect(page.locator("table.principal-detail")).to_contain_text("2.5\xa0GB")
    john = Principal.objects.get(name="john")
    assert page.url.endswith(f"/accounts/{john.pk}/")
    assert john.quota == int(2.5 * 1024**3)
    assert [e.address for e in john.emails.all()] == ["john@a.example", "j.doe@a2.example"]

    page.goto(f"{live_server.url}/accounts/{john.pk}/edit/")
    expect(page.locator("input[name=quota_0]")).to_have_value("2560")
    expect(page.locator("select[name=quota_1]")).to_have_value("MB")
    expect(rows).to_have_count(3)  # two addresses and an empty row


def test_it_shows_an_address_error_beside_the_picker(browser_page, live_server, admin_a, domains):
    page = browser_page
    login(page, live_server, "admin-a", TEST_PASSWORD)
    page.goto(f"{live_server.url}/accounts/new/?type=individual")
    page.fill("#id_name", "john")
    page.locator("[data-address-row] input").first.fill("john@elsewhere.example")
    page.click("#principal-form button[type=submit]")
    expect(page.locator("#id_emails_error")).to_have_text(
        "Enter only the part before the @ in 'john@elsewhere.example' and pick the domain."
    )
    # The re-rendered form (swapped in by htmx) keeps the row, offers an empty one, and
    # still adds more.
    rows = page.locator("[data-address-row]")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("input")).to_have_value("john@elsewhere.example")
    page.click("[data-add-address]")
    expect(rows).to_have_count(3)
    assert not Principal.objects.filter(name="john").exists()
