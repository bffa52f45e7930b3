"""The API-key form in Chromium: select-all per area, and the address bar after a create."""

import re

import pytest
from playwright.sync_api import expect

from apps.accounts.models import Principal
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_it_selects_a_whole_area_and_creates_the_key_with_it(browser_page, live_server, admin_a):
    page = browser_page
    login(page, live_server, "admin-a", TEST_PASSWORD)
    page.goto(f"{live_server.url}/account/api-keys/")
    domains = page.locator("#permissions-domains-dkim-and-dns")
    select_all = domains.locator("input[data-select-all]")
    expect(select_all).to_be_visible()
    select_all.check()
    boxes = domains.locator("input[name=permissions]")
    assert boxes.count() == 9
    for i in range(boxes.count()):
        expect(boxes.nth(i)).to_be_checked()
    # Other areas are untouched.
    expect(
        page.locator("#permissions-accounts-and-access input[name=permissions]:checked")
    ).to_have_count(0)

    domains.locator("input[value=domain-delete]").uncheck()
    expect(select_all).not_to_be_checked()
    assert select_all.evaluate("box => box.indeterminate") is True
    domains.locator("input[value=domain-delete]").check()
    expect(select_all).to_be_checked()
    assert select_all.evaluate("box => box.indeterminate") is False
    domains.locator("input[value=domain-delete]").uncheck()

    page.fill("#id_name", "dns-bot")
    page.fill("#id_password", TEST_PASSWORD)
    page.click("#create-api-key")
    expect(page.locator("#api-key-secret")).to_be_visible()
    # The address bar follows the page: a reload is a GET of the list, not a second POST.
    expect(page).to_have_url(re.compile(r"/account/api-keys/$"))
    key = Principal.objects.get(name="dns-bot")
    assert sorted(key.enabled_permissions) == sorted(
        [
            "domain-list",
            "domain-get",
            "domain-create",
            "domain-update",
            "dkim-signature-get",
            "dkim-signature-create",
            "dns-record-get",
            "dns-check",
        ]
    )
    page.reload()
    expect(page.locator("#api-key-secret")).to_have_count(0)
    expect(page.locator("#api-key-table")).to_contain_text("dns-bot")
    assert Principal.objects.filter(name="dns-bot").count() == 1


def test_it_unticks_a_whole_area(browser_page, live_server, admin_a):
    page = browser_page
    login(page, live_server, "admin-a", TEST_PASSWORD)
    page.goto(f"{live_server.url}/account/api-keys/")
    own = page.locator("#permissions-own-account")
    boxes = own.locator("input[name=permissions]")
    assert boxes.count() >= 2
    boxes.first.check()
    expect(own.locator("input[data-select-all]")).not_to_be_checked()  # part of the area
    for box in boxes.all():  # every permission of the area ticked: the area is
        box.check()
    expect(own.locator("input[data-select-all]")).to_be_checked()
    own.locator("input[data-select-all]").uncheck()
    expect(own.locator("input[name=permissions]:checked")).to_have_count(0)
