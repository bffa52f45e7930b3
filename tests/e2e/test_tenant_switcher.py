"""The superadmin picks a tenant in Chromium and the lists narrow to it, in place."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_tenants(make_principal, tenant_a, tenant_b):
    for tenant, prefix in ((tenant_a, "a"), (tenant_b, "b")):
        make_principal(
            tenant=tenant, roles=(), name=f"{prefix}.example", type="domain", password=""
        )
        make_principal(tenant=tenant, name=f"jane-{prefix}", password="")


def test_it_narrows_the_lists_to_the_picked_tenant(
    browser_page, live_server, superadmin, tenant_a, two_tenants
):
    page = browser_page
    login(page, live_server, "root", TEST_PASSWORD)
    page.goto(f"{live_server.url}/accounts/?q=jane")
    table = page.locator("#principal-table tbody")
    expect(table).to_contain_text("jane-a")
    expect(table).to_contain_text("jane-b")
    switcher = page.locator("#tenant-switcher select")
    expect(page.locator("#tenant-switcher button")).to_be_hidden()  # JS submits on change

    switcher.select_option(label="tenant-a")
    expect(page).to_have_url(re.compile(r"/accounts/\?q=jane$"))
    expect(table).to_contain_text("jane-a")
    expect(table).not_to_contain_text("jane-b")
    expect(page.locator("#tenant-switcher select")).to_have_value(str(tenant_a.pk))

    page.click("nav[aria-label=Main] >> text=Domains")
    domains = page.locator("#domain-table tbody")
    expect(domains).to_contain_text("a.example")
    expect(domains).not_to_contain_text("b.example")

    page.locator("#tenant-switcher select").select_option(label="All tenants")
    expect(page.locator("#domain-table tbody")).to_contain_text("b.example")


def test_a_tenant_admin_sees_no_switcher(browser_page, live_server, admin_a):
    page = browser_page
    login(page, live_server, "admin-a", TEST_PASSWORD)
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#tenant-switcher")).to_have_count(0)
